package access

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/core/space"
)

type person struct {
	id, kind    string
	blacklisted bool
	leases      []lease
	groups      map[string]bool
}

type lease struct {
	unit         string
	starts, ends time.Time
}

type credential struct {
	id               int64
	person           string
	kind             string
	duress           bool
	validFrom, until *time.Time
	revoked          bool
	enc              []byte // the secret, sealed (hmac rows); nil for rows from before
}

type rule struct {
	whoKind, who string
	schedule     *Schedule
	factors      string // "" or "card+pin"
}

// snapshot is everything a decision reads, loaded at once and swapped whole.
type snapshot struct {
	doors map[string]*Door
	byCam map[string][]string // door ids by the camera whose faces open them
	// byPlateCam is the gates by the camera whose plates open them.
	byPlateCam map[string][]string
	people     map[string]*person
	creds      map[[32]byte]*credential // by the stored hash: keyed (secrets.hash), or SHA-256 for rows from before
	revoked    map[[32]byte]bool        // secrets whose every credential is revoked
	rules      map[string][]rule        // by door
	visits     map[string][]visit       // by visitor
	faces      *faceSet
	// index finds the people a rule names (snapshot.named), built once.
	indexOnce sync.Once
	index     peopleIndex
	// galleries caches each door's gallery (snapshot.gallery).
	galleryMu sync.Mutex
	galleries map[string]map[string]bool
	// hash is how a presented secret is looked up (the engine's keyed hash).
	hash func(kind, value string) [32]byte
}

// loadSnapshot reads every table a decision reads, in one transaction.
func loadSnapshot(ctx context.Context, tx pgx.Tx, hash func(kind, value string) [32]byte, sp space.Space) (*snapshot, error) {
	s := &snapshot{hash: hash, doors: map[string]*Door{}, people: map[string]*person{}, creds: map[[32]byte]*credential{},
		revoked: map[[32]byte]bool{}, rules: map[string][]rule{}}
	for _, load := range []func(context.Context, pgx.Tx) error{s.loadDoors, s.loadPeople, s.loadCredentials, s.loadRules, s.loadVisits} {
		if err := load(ctx, tx); err != nil {
			return nil, err
		}
	}
	var err error
	if s.faces, err = loadFaces(ctx, tx, sp); err != nil {
		return nil, err
	}
	s.byCam, s.byPlateCam = map[string][]string{}, map[string][]string{}
	for id, d := range s.doors {
		if d.Camera != "" && d.CameraOpens != CameraPlates {
			s.byCam[d.Camera] = append(s.byCam[d.Camera], id)
		}
		if d.Camera != "" && (d.CameraOpens == CameraPlates || d.CameraOpens == CameraBoth) {
			s.byPlateCam[d.Camera] = append(s.byPlateCam[d.Camera], id)
		}
	}
	return s, nil
}

func (s *snapshot) loadDoors(ctx context.Context, tx pgx.Tx) error {
	rows, _ := tx.Query(ctx, `SELECT id, name, camera, area, direction, anti_passback, fail_mode, pulse_ms, key, face_policy, plate_policy, camera_opens FROM doors`)
	doors, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Door, error) {
		d := &Door{}
		return d, r.Scan(&d.ID, &d.Name, &d.Camera, &d.Area, &d.Direction, &d.AntiPassback, &d.FailMode, &d.PulseMS, &d.Key, &d.FacePolicy, &d.PlatePolicy, &d.CameraOpens)
	})
	for _, d := range doors {
		s.doors[d.ID] = d
	}
	return err
}

// loadPeople reads people, their leases and their groups.
func (s *snapshot) loadPeople(ctx context.Context, tx pgx.Tx) error {
	rows, _ := tx.Query(ctx, `SELECT id, kind, blacklisted FROM people`)
	if _, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		p := &person{}
		err := r.Scan(&p.id, &p.kind, &p.blacklisted)
		s.people[p.id] = p
		return struct{}{}, err
	}); err != nil {
		return err
	}
	rows, _ = tx.Query(ctx, `SELECT person_id, unit_id, starts, ends FROM leases`)
	if _, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var pid string
		var l lease
		err := r.Scan(&pid, &l.unit, &l.starts, &l.ends)
		if p := s.people[pid]; p != nil {
			p.leases = append(p.leases, l)
		}
		return struct{}{}, err
	}); err != nil {
		return err
	}
	rows, _ = tx.Query(ctx, `SELECT group_id, person_id FROM group_members`)
	_, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var g, pid string
		err := r.Scan(&g, &pid)
		if p := s.people[pid]; p != nil {
			if p.groups == nil {
				p.groups = map[string]bool{}
			}
			p.groups[g] = true
		}
		return struct{}{}, err
	})
	return err
}

// loadCredentials reads every credential by its secret's hash; a secret whose every credential
// is revoked is remembered as revoked.
func (s *snapshot) loadCredentials(ctx context.Context, tx pgx.Tx) error {
	rows, _ := tx.Query(ctx, `SELECT id, person_id, kind, secret_hash, duress, valid_from, valid_until, revoked_at IS NOT NULL, secret_enc FROM credentials`)
	_, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		c := &credential{}
		var h []byte
		err := r.Scan(&c.id, &c.person, &c.kind, &h, &c.duress, &c.validFrom, &c.until, &c.revoked, &c.enc)
		var k [32]byte
		copy(k[:], h)
		if c.revoked {
			if _, live := s.creds[k]; !live {
				s.revoked[k] = true
			}
		} else {
			s.creds[k] = c
			delete(s.revoked, k)
		}
		return struct{}{}, err
	})
	return err
}

// loadRules reads the schedules and every door's rules.
func (s *snapshot) loadRules(ctx context.Context, tx pgx.Tx) error {
	scheds := map[string]*Schedule{}
	rows, _ := tx.Query(ctx, `SELECT id, weekly, holidays, tz FROM schedules`)
	if _, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var id, tz string
		var weekly, holidays []byte
		if err := r.Scan(&id, &weekly, &holidays, &tz); err != nil {
			return struct{}{}, err
		}
		sc, err := ParseSchedule(weekly, holidays, tz)
		if err != nil {
			return struct{}{}, fmt.Errorf("schedule %s: %w", id, err)
		}
		scheds[id] = sc
		return struct{}{}, nil
	}); err != nil {
		return err
	}
	rows, _ = tx.Query(ctx, `SELECT door_id, who_kind, who, schedule_id, factors FROM rules`)
	_, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var door string
		var ru rule
		var sid *string
		err := r.Scan(&door, &ru.whoKind, &ru.who, &sid, &ru.factors)
		if sid != nil {
			ru.schedule = scheds[*sid]
		}
		s.rules[door] = append(s.rules[door], ru)
		return struct{}{}, err
	})
	return err
}
