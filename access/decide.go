package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/access/audit"
)

// Reason codes of decisions.
const (
	Granted          = "granted"
	GrantedDuress    = "granted_duress" // opened, with a silent alarm
	DenyUnknownDoor  = "unknown_door"
	DenyUnknown      = "unknown_credential"
	DenyRevoked      = "revoked_credential"
	DenyExpired      = "credential_expired"
	DenyNotYetValid  = "credential_not_yet_valid"
	DenyBlacklisted  = "blacklisted"
	DenyNoRule       = "no_rule"
	DenyLeaseEnded   = "lease_expired"
	DenyLeaseFuture  = "lease_not_started"
	DenySchedule     = "outside_schedule"
	DenyAntiPassback = "anti_passback"
)

// Credential kinds a controller may present.
const (
	KindCard = "card"
	KindPIN  = "pin"
	KindQR   = "qr"
)

// Presented is what a door controller read.
type Presented struct {
	Kind  string `json:"kind"`  // card, pin, qr
	Value string `json:"value"` // card number, PIN, QR payload
}

// Decision is the engine's answer.
type Decision struct {
	Door     string    `json:"door"`
	Grant    bool      `json:"grant"`
	Reason   string    `json:"reason"`
	PersonID string    `json:"person_id,omitempty"`
	PulseMS  int       `json:"pulse_ms,omitempty"`
	Time     time.Time `json:"time"`
	Expires  time.Time `json:"expires"` // a controller acts on it only before this
	Nonce    string    `json:"nonce"`   // echoed from the request
}

// Door is a door unit.
type Door struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Camera       string `json:"camera"`
	Area         string `json:"area"`
	Direction    string `json:"direction"`
	AntiPassback bool   `json:"anti_passback"`
	FailMode     string `json:"fail_mode"`
	PulseMS      int    `json:"pulse_ms"`
	Key          []byte `json:"-"`
}

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
	duress           bool
	validFrom, until *time.Time
	revoked          bool
}

type rule struct {
	whoKind, who string
	schedule     *Schedule
}

// snapshot is everything a decision reads, loaded at once and swapped whole.
type snapshot struct {
	doors   map[string]*Door
	byCam   map[string][]string // door ids by the camera that watches them
	people  map[string]*person
	creds   map[[32]byte]*credential // by sha256(kind + ":" + value)
	revoked map[[32]byte]bool        // secrets whose every credential is revoked
	rules   map[string][]rule        // by door
	faces   *faceSet
}

// Engine decides door requests from an in-memory snapshot of PostgreSQL (reloaded after every
// change; see Watch for changes made by other processes), and writes every decision to the audit
// chain.
type Engine struct {
	pool  *pgxpool.Pool
	trail Auditor
	now   func() time.Time

	mu      sync.RWMutex
	snap    *snapshot
	version int64 // bumped by every reload: a controller's cache is current when it holds this

	pbMu     sync.Mutex
	passback map[[2]string]bool // person, area → inside

	cmds     commands
	hist     cacheHistory
	ctrls    controllersSeen
	sinks    []func(Command, []byte)
	onReload []func()
}

// Auditor appends to the audit chain (audit.Chain). A decision that cannot be audited is not given.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (int64, error)
}

// NewEngine loads the snapshot.
func NewEngine(ctx context.Context, pool *pgxpool.Pool, trail Auditor) (*Engine, error) {
	e := &Engine{pool: pool, trail: trail, now: time.Now, passback: map[[2]string]bool{}}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT person_id, area, inside FROM passback`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p, a string
		var in bool
		if err := rows.Scan(&p, &a, &in); err != nil {
			return nil, err
		}
		e.passback[[2]string{p, a}] = in
	}
	return e, rows.Err()
}

// SecretKey is how a credential's secret is stored: SHA-256 of "kind:value".
func SecretKey(kind, value string) [32]byte {
	return sha256.Sum256([]byte(kind + ":" + value))
}

// Reload reads every table the engine decides from.
func (e *Engine) Reload(ctx context.Context) error {
	s := &snapshot{doors: map[string]*Door{}, people: map[string]*person{}, creds: map[[32]byte]*credential{},
		revoked: map[[32]byte]bool{}, rules: map[string][]rule{}}
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id, name, camera, area, direction, anti_passback, fail_mode, pulse_ms, key FROM doors`)
		doors, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Door, error) {
			d := &Door{}
			return d, r.Scan(&d.ID, &d.Name, &d.Camera, &d.Area, &d.Direction, &d.AntiPassback, &d.FailMode, &d.PulseMS, &d.Key)
		})
		if err != nil {
			return err
		}
		for _, d := range doors {
			s.doors[d.ID] = d
		}
		rows, _ = tx.Query(ctx, `SELECT id, kind, blacklisted FROM people`)
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
		if _, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
			var g, pid string
			err := r.Scan(&g, &pid)
			if p := s.people[pid]; p != nil {
				if p.groups == nil {
					p.groups = map[string]bool{}
				}
				p.groups[g] = true
			}
			return struct{}{}, err
		}); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT id, person_id, kind, secret_hash, duress, valid_from, valid_until, revoked_at IS NOT NULL FROM credentials`)
		if _, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
			c := &credential{}
			var kind string
			var h []byte
			err := r.Scan(&c.id, &c.person, &kind, &h, &c.duress, &c.validFrom, &c.until, &c.revoked)
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
		}); err != nil {
			return err
		}
		scheds := map[string]*Schedule{}
		rows, _ = tx.Query(ctx, `SELECT id, weekly, holidays, tz FROM schedules`)
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
		if s.faces, err = loadFaces(ctx, tx); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, `SELECT door_id, who_kind, who, schedule_id FROM rules`)
		_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
			var door string
			var ru rule
			var sid *string
			err := r.Scan(&door, &ru.whoKind, &ru.who, &sid)
			if sid != nil {
				ru.schedule = scheds[*sid]
			}
			s.rules[door] = append(s.rules[door], ru)
			return struct{}{}, err
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("access: loading: %w", err)
	}
	s.byCam = map[string][]string{}
	for id, d := range s.doors {
		if d.Camera != "" {
			s.byCam[d.Camera] = append(s.byCam[d.Camera], id)
		}
	}
	e.mu.Lock()
	e.snap = s
	e.version = time.Now().UnixNano()
	hooks := append([]func(){}, e.onReload...)
	e.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
	return nil
}

// Watch reloads the snapshot whenever any process changes access data (PostgreSQL
// LISTEN/NOTIFY on vigil_access), and every minute in any case, until ctx ends.
func (e *Engine) Watch(ctx context.Context, log *slog.Logger) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := e.pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, `LISTEN vigil_access`); err != nil {
				return err
			}
			for {
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				_, err := conn.Conn().WaitForNotification(wctx)
				cancel()
				if ctx.Err() != nil {
					return nil
				}
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				if err := e.Reload(ctx); err != nil {
					log.Warn("access: reload failed", "err", err)
				}
			}
		}()
		if err != nil && ctx.Err() == nil {
			log.Warn("access: listening for changes failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// Door returns a door (for its key and settings).
func (e *Engine) Door(id string) (*Door, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	d, ok := e.snap.doors[id]
	return d, ok
}

// Decide answers a credential presented at a door, audits the decision and, on a grant through
// an anti-passback door, records the person inside or out.
func (e *Engine) Decide(ctx context.Context, doorID string, c Presented, nonce string) (Decision, error) {
	e.mu.RLock()
	s := e.snap
	e.mu.RUnlock()
	now := e.now()
	pre, person, duress := "", "", false
	if s.doors[doorID] == nil {
		pre = DenyUnknownDoor
	} else {
		key := SecretKey(c.Kind, c.Value)
		cred := s.creds[key]
		switch {
		case cred == nil && s.revoked[key]:
			pre = DenyRevoked
		case cred == nil:
			pre = DenyUnknown
		default:
			person, duress = cred.person, cred.duress
			switch {
			case cred.validFrom != nil && now.Before(*cred.validFrom):
				pre = DenyNotYetValid
			case cred.until != nil && !now.Before(*cred.until):
				pre = DenyExpired
			}
		}
	}
	return e.decide(ctx, doorID, s, person, pre, duress, map[string]any{"credential": c.Kind}, nonce)
}

// decide applies the person's rights at the door (unless pre already refused), audits, and keeps
// anti-passback state. Every credential kind ends here.
func (e *Engine) decide(ctx context.Context, doorID string, s *snapshot, personID, pre string, duress bool, extra map[string]any, nonce string) (Decision, error) {
	now := e.now()
	d := Decision{Door: doorID, Time: now.UTC(), Expires: now.Add(10 * time.Second).UTC(), Nonce: nonce, PersonID: personID}
	door := s.doors[doorID]
	var areaKey [2]string
	rights := func() string {
		p := s.people[personID]
		if p == nil {
			return DenyUnknown
		}
		if p.blacklisted {
			return DenyBlacklisted
		}
		why := DenyNoRule
		allowed := false
		for _, r := range s.rules[doorID] {
			ok := false
			switch r.whoKind {
			case "person":
				ok = r.who == p.id
			case "kind":
				ok = r.who == p.kind
			case "group":
				ok = p.groups[r.who]
			case "unit":
				for _, l := range p.leases {
					if l.unit != r.who {
						continue
					}
					switch {
					case now.Before(l.starts):
						why = DenyLeaseFuture
					case !now.Before(l.ends):
						why = DenyLeaseEnded
					default:
						ok = true
					}
				}
			}
			if !ok {
				continue
			}
			if r.schedule != nil && !r.schedule.Open(now) {
				why = DenySchedule
				continue
			}
			allowed = true
			break
		}
		if !allowed {
			return why
		}
		if door.AntiPassback && door.Area != "" {
			areaKey = [2]string{p.id, door.Area}
			e.pbMu.Lock()
			inside, known := e.passback[areaKey]
			e.pbMu.Unlock()
			if known && inside == (door.Direction == "in") {
				return DenyAntiPassback
			}
		}
		if duress {
			return GrantedDuress
		}
		return Granted
	}
	d.Reason = pre
	if d.Reason == "" {
		d.Reason = rights()
	}
	d.Grant = d.Reason == Granted || d.Reason == GrantedDuress
	if d.Grant {
		d.PulseMS = door.PulseMS
	}
	detail := map[string]any{"door": doorID, "person": d.PersonID, "grant": d.Grant, "reason": d.Reason}
	for k, v := range extra {
		detail[k] = v
	}
	if _, err := e.trail.Append(ctx, audit.Entry{Time: now, Actor: "door:" + doorID, Role: "controller", Action: "door.decision", Reason: d.Reason, Detail: detailJSON(detail)}); err != nil {
		// An unaudited grant is not given.
		return Decision{}, err
	}
	if d.Grant && areaKey[0] != "" {
		in := door.Direction == "in"
		e.pbMu.Lock()
		e.passback[areaKey] = in
		e.pbMu.Unlock()
		if _, err := e.pool.Exec(ctx, `INSERT INTO passback (person_id, area, inside, at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (person_id, area) DO UPDATE SET inside = $3, at = $4`, areaKey[0], areaKey[1], in, now); err != nil {
			return d, err
		}
	}
	return d, nil
}

// NewKey makes a controller key (32 random bytes).
func NewKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// ErrExists means an id is taken.
var ErrExists = errors.New("access: already exists")
