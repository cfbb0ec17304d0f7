package strangers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// Errors the API maps to statuses.
var (
	ErrNotFound = errors.New("strangers: no such stranger")
	ErrInvalid  = errors.New("strangers: invalid request")
)

// Rules: when a stranger raises an alert.
type Rules struct {
	// Night: seen between NightFrom and NightTo (local hours; default 22 to 6) on NightDays
	// distinct days (default 3) within 7 days. Raised once a week per stranger.
	NightFrom, NightTo, NightDays int
	// Door: seen DoorTries times (default 3) at door cameras within 10 minutes. Raised at most
	// once in 30 minutes per stranger.
	DoorTries int
	// IsDoor says which cameras are door cameras.
	IsDoor func(camera string) bool
	// Loc is the site's time zone (default time.Local).
	Loc *time.Location
	// Lookback is how far back a pass looks for faces not clustered yet (a node that was down,
	// the event writer's backlog after an outage). Default 2 hours.
	Lookback time.Duration
}

func (r *Rules) defaults() {
	if r.NightFrom == 0 && r.NightTo == 0 {
		r.NightFrom, r.NightTo = 22, 6
	}
	if r.NightDays == 0 {
		r.NightDays = 3
	}
	if r.DoorTries == 0 {
		r.DoorTries = 3
	}
	if r.Loc == nil {
		r.Loc = time.Local
	}
	if r.Lookback == 0 {
		r.Lookback = 2 * time.Hour
	}
	if r.IsDoor == nil {
		r.IsDoor = func(string) bool { return false }
	}
}

// Alarm is a stranger rule that fired.
type Alarm struct {
	Stranger string
	Type     string // stranger_at_night, stranger_at_door
	Camera   string // where it was last seen
	Time     time.Time
	Days     int // night: on how many nights
	Tries    int // door: how many times
}

// Service clusters unmatched faces and answers about strangers.
type Service struct {
	pool  *pgxpool.Pool
	space space.Space
	rules Rules

	mu     sync.Mutex
	ix     *Index
	loaded time.Time // the database's time of the last centroid load
}

// New returns the service for faces of sp, joining at DefaultJoin(sp).
func New(pool *pgxpool.Pool, sp space.Space, rules Rules) *Service {
	rules.defaults()
	return &Service{pool: pool, space: sp, rules: rules, ix: NewIndex(DefaultJoin(sp))}
}

// passLock is the advisory lock one node holds while it clusters (every node with the search
// role may run passes; one at a time does).
const passLock = 736101

// Pass clusters the unmatched faces stored since the last pass (within Rules.Lookback, up to
// 2,000), and returns the stranger rules that fired. Another node's pass in progress makes this
// one a no-op.
func (s *Service) Pass(ctx context.Context) (clustered int, alarms []Alarm, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var got bool
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1), now()`, passLock).Scan(&got, &now); err != nil || !got {
		return 0, nil, err
	}
	if err := s.refresh(ctx, tx, now); err != nil {
		return 0, nil, err
	}
	rows, err := tx.Query(ctx, `SELECT f.event_id, f.time, f.camera, f.embedding FROM faces f
		JOIN events e ON e.time = f.time AND e.id = f.event_id
		WHERE f.time >= $1 AND f.time < $2 AND f.model = $3 AND e.person_id IS NULL
		  AND NOT EXISTS (SELECT 1 FROM stranger_faces s WHERE s.event_id = f.event_id)
		ORDER BY f.time LIMIT 2000`, now.Add(-s.rules.Lookback), now, s.space.Name)
	if err != nil {
		return 0, nil, err
	}
	type face struct {
		id, camera string
		t          time.Time
		e          []float32
	}
	faces, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (face, error) {
		var f face
		var b []byte
		err := r.Scan(&f.id, &f.t, &f.camera, &b)
		f.e = make([]float32, len(b)/4)
		event.UnpackVector(b, f.e)
		return f, err
	})
	if err != nil {
		return 0, nil, err
	}
	touched := map[string]face{}
	for _, f := range faces {
		if len(f.e) != s.space.Dims {
			continue
		}
		id, d, c := s.ix.Assign(f.e)
		if id == "" {
			c, d = append([]float32(nil), f.e...), 0
			space.Normalize(c)
			if err := tx.QueryRow(ctx, `INSERT INTO strangers (centroid, model, faces, first_seen, last_seen) VALUES ($1, $2, 1, $3, $3) RETURNING id`,
				event.PackVector(c), s.space.Name, f.t).Scan(&id); err != nil {
				return 0, nil, err
			}
			s.ix.Put(id, c, 1)
		} else if _, err := tx.Exec(ctx, `UPDATE strangers SET centroid = $2, faces = faces + 1, first_seen = least(first_seen, $3),
				last_seen = greatest(last_seen, $3), updated_at = now() WHERE id = $1`, id, event.PackVector(c), f.t); err != nil {
			return 0, nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO stranger_faces (event_id, event_time, camera, stranger_id, distance) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (event_id) DO NOTHING`, f.id, f.t, f.camera, id, d); err != nil {
			return 0, nil, err
		}
		if prev, ok := touched[id]; !ok || f.t.After(prev.t) {
			touched[id] = f
		}
	}
	ids := make([]string, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		a, err := s.rulesFor(ctx, tx, id, now, touched[id].camera)
		if err != nil {
			return 0, nil, err
		}
		alarms = append(alarms, a...)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, err
	}
	return len(faces), alarms, nil
}

// refresh loads the strangers changed since the last load (all of the last 30 days at first).
func (s *Service) refresh(ctx context.Context, tx pgx.Tx, now time.Time) error {
	since := s.loaded.Add(-time.Minute)
	if s.loaded.IsZero() {
		since = now.Add(-30 * 24 * time.Hour)
	}
	rows, err := tx.Query(ctx, `SELECT id, centroid, faces, merged_into IS NOT NULL OR promoted_to IS NOT NULL FROM strangers
		WHERE model = $1 AND (updated_at > $2 OR last_seen > $2)`, s.space.Name, since)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b []byte
		var n int
		var gone bool
		if err := rows.Scan(&id, &b, &n, &gone); err != nil {
			return err
		}
		if gone { // merged, or promoted: its faces now match a watch-list entry
			s.ix.Drop(id)
			continue
		}
		c := make([]float32, len(b)/4)
		event.UnpackVector(b, c)
		s.ix.Put(id, c, n)
	}
	s.loaded = now
	return rows.Err()
}

// rulesFor checks the rules for a stranger just seen at camera.
func (s *Service) rulesFor(ctx context.Context, tx pgx.Tx, id string, now time.Time, camera string) ([]Alarm, error) {
	var nightAt, doorAt *time.Time
	if err := tx.QueryRow(ctx, `SELECT night_alert_at, door_alert_at FROM strangers WHERE id = $1`, id).Scan(&nightAt, &doorAt); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT event_time, camera FROM stranger_faces WHERE stranger_id = $1 AND event_time > $2 ORDER BY event_time DESC LIMIT 2000`,
		id, now.Add(-7*24*time.Hour))
	if err != nil {
		return nil, err
	}
	type seen struct {
		T      time.Time
		Camera string
	}
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[seen])
	if err != nil {
		return nil, err
	}
	var out []Alarm
	r := s.rules
	nights := map[string]bool{}
	tries := 0
	wraps := r.NightFrom > r.NightTo // 22 to 6: the night spans midnight
	for _, a := range all {
		lt := a.T.In(r.Loc)
		h := lt.Hour()
		if (wraps && (h >= r.NightFrom || h < r.NightTo)) || (!wraps && h >= r.NightFrom && h < r.NightTo) {
			if wraps && h < r.NightTo {
				lt = lt.Add(-24 * time.Hour) // the small hours belong to the night before
			}
			nights[lt.Format("2006-01-02")] = true
		}
		if now.Sub(a.T) <= 10*time.Minute && r.IsDoor(a.Camera) {
			tries++
		}
	}
	if len(nights) >= r.NightDays && (nightAt == nil || now.Sub(*nightAt) >= 7*24*time.Hour) {
		out = append(out, Alarm{Stranger: id, Type: "stranger_at_night", Camera: camera, Time: now, Days: len(nights)})
		if _, err := tx.Exec(ctx, `UPDATE strangers SET night_alert_at = $2 WHERE id = $1`, id, now); err != nil {
			return nil, err
		}
	}
	if tries >= r.DoorTries && (doorAt == nil || now.Sub(*doorAt) >= 30*time.Minute) {
		out = append(out, Alarm{Stranger: id, Type: "stranger_at_door", Camera: camera, Time: now, Tries: tries})
		if _, err := tx.Exec(ctx, `UPDATE strangers SET door_alert_at = $2 WHERE id = $1`, id, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Stranger is one anonymous identity.
type Stranger struct {
	ID         string    `json:"id"`
	Faces      int       `json:"faces"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Cameras    []string  `json:"cameras"`
	Days       int       `json:"days"` // distinct days seen
	MergedInto string    `json:"merged_into,omitempty"`
	PromotedTo string    `json:"promoted_to,omitempty"`
	Snapshot   string    `json:"snapshot_event,omitempty"` // the event whose shot shows them best
}

// List returns the strangers seen since since with at least minFaces faces, most faces first.
func (s *Service) List(ctx context.Context, since time.Time, minFaces, limit int) ([]Stranger, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT s.id, s.faces, s.first_seen, s.last_seen,
			coalesce((SELECT array_agg(DISTINCT camera ORDER BY camera) FROM stranger_faces f WHERE f.stranger_id = s.id), '{}'),
			(SELECT count(DISTINCT date_trunc('day', event_time)) FROM stranger_faces f WHERE f.stranger_id = s.id),
			coalesce(s.merged_into, ''), coalesce(s.promoted_to, ''),
			coalesce((SELECT event_id FROM stranger_faces f WHERE f.stranger_id = s.id ORDER BY distance LIMIT 1), '')
		FROM strangers s WHERE s.last_seen >= $1 AND s.faces >= $2 AND s.merged_into IS NULL
		ORDER BY s.faces DESC, s.last_seen DESC LIMIT $3`, since, minFaces, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Stranger])
}

// Get returns one stranger (a merged one names where its faces went).
func (s *Service) Get(ctx context.Context, id string) (Stranger, error) {
	list, err := s.pool.Query(ctx, `SELECT s.id, s.faces, s.first_seen, s.last_seen,
			coalesce((SELECT array_agg(DISTINCT camera ORDER BY camera) FROM stranger_faces f WHERE f.stranger_id = s.id), '{}'),
			(SELECT count(DISTINCT date_trunc('day', event_time)) FROM stranger_faces f WHERE f.stranger_id = s.id),
			coalesce(s.merged_into, ''), coalesce(s.promoted_to, ''),
			coalesce((SELECT event_id FROM stranger_faces f WHERE f.stranger_id = s.id ORDER BY distance LIMIT 1), '')
		FROM strangers s WHERE s.id = $1`, id)
	if err != nil {
		return Stranger{}, err
	}
	st, err := pgx.CollectExactlyOneRow(list, pgx.RowToStructByPos[Stranger])
	if errors.Is(err, pgx.ErrNoRows) {
		return st, ErrNotFound
	}
	return st, err
}

// Appearance is one face of a stranger.
type Appearance struct {
	EventID  string    `json:"event_id"`
	Time     time.Time `json:"time"`
	Camera   string    `json:"camera"`
	Distance float32   `json:"distance"` // from the stranger's centroid when it joined
}

// Appearances lists a stranger's faces, newest first (at most limit, 1000).
func (s *Service) Appearances(ctx context.Context, id string, limit int) ([]Appearance, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	rows, err := s.pool.Query(ctx, `SELECT event_id, event_time, camera, distance FROM stranger_faces WHERE stranger_id = $1
		ORDER BY event_time DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Appearance])
}

// faceVectors are the stored descriptors of a stranger's faces (at most n, nearest the centroid
// first).
func (s *Service) faceVectors(ctx context.Context, q pgx.Tx, where string, arg any, n int) ([][]float32, error) {
	rows, err := q.Query(ctx, `SELECT f.embedding FROM stranger_faces sf JOIN faces f ON f.event_id = sf.event_id AND f.time = sf.event_time
		WHERE `+where+` ORDER BY sf.distance LIMIT $2`, arg, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]float32, error) {
		var b []byte
		err := r.Scan(&b)
		v := make([]float32, len(b)/4)
		event.UnpackVector(b, v)
		return v, err
	})
}

// Promote makes a stranger a watch-list entry (person id, name, list) from its centroid and up
// to 4 of its faces nearest it, in tx (the audit row's). Every node's gallery follows the entry;
// the stranger stops collecting faces (they now match the entry).
func (s *Service) Promote(ctx context.Context, tx pgx.Tx, id, person, name, list, by string) error {
	if person == "" || len(person) > 128 || name == "" || len(name) > 200 || list == "" || list == "residents" || list == "access" {
		return fmt.Errorf("%w: a person id, a name and a watch list (not residents or access)", ErrInvalid)
	}
	var c []byte
	if err := tx.QueryRow(ctx, `UPDATE strangers SET promoted_to = $2, updated_at = now() WHERE id = $1 AND merged_into IS NULL
		RETURNING centroid`, id, person).Scan(&c); errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	faces, err := s.faceVectors(ctx, tx, "sf.stranger_id = $1", id, 4)
	if err != nil {
		return err
	}
	embs := [][]byte{c}
	for _, f := range faces {
		embs = append(embs, event.PackVector(f))
	}
	_, err = tx.Exec(ctx, `INSERT INTO watchlist_entries (id, name, list, embeddings, model, source, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, person, name, list, embs, s.space.Name, "stranger "+id, by)
	return err
}

// Merge moves every face of stranger id into into (an investigator saw they are one person);
// into's centroid is made again from its faces. In tx.
func (s *Service) Merge(ctx context.Context, tx pgx.Tx, id, into string) error {
	if id == into {
		return fmt.Errorf("%w: a stranger is not merged into itself", ErrInvalid)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM strangers WHERE id = ANY($1) AND merged_into IS NULL`, []string{id, into}).Scan(&n); err != nil {
		return err
	}
	if n != 2 {
		return ErrNotFound
	}
	if _, err := tx.Exec(ctx, `UPDATE stranger_faces SET stranger_id = $2 WHERE stranger_id = $1`, id, into); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE strangers SET merged_into = $2, faces = 0, updated_at = now() WHERE id = $1`, id, into); err != nil {
		return err
	}
	return s.recentre(ctx, tx, into)
}

// Split moves the named faces of stranger id into a new stranger (an investigator saw two
// people in one) and returns its id. In tx.
func (s *Service) Split(ctx context.Context, tx pgx.Tx, id string, eventIDs []string) (string, error) {
	if len(eventIDs) == 0 || len(eventIDs) > 1000 {
		return "", fmt.Errorf("%w: 1 to 1000 of its events to split off", ErrInvalid)
	}
	var mine, all int
	if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_id = ANY($2)), count(*) FROM stranger_faces WHERE stranger_id = $1`,
		id, eventIDs).Scan(&mine, &all); err != nil {
		return "", err
	}
	if all == 0 {
		return "", ErrNotFound
	}
	if mine != len(eventIDs) || mine == all {
		return "", fmt.Errorf("%w: the events must be some of the stranger's own, not all of them", ErrInvalid)
	}
	var nid string
	if err := tx.QueryRow(ctx, `INSERT INTO strangers (centroid, model, faces, first_seen, last_seen)
		SELECT $1, $2, 0, min(event_time), max(event_time) FROM stranger_faces WHERE event_id = ANY($3) RETURNING id`,
		[]byte{}, s.space.Name, eventIDs).Scan(&nid); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE stranger_faces SET stranger_id = $2 WHERE event_id = ANY($1)`, eventIDs, nid); err != nil {
		return "", err
	}
	if err := s.recentre(ctx, tx, id); err != nil {
		return "", err
	}
	return nid, s.recentre(ctx, tx, nid)
}

// recentre makes a stranger's centroid, count and times again from its faces.
func (s *Service) recentre(ctx context.Context, tx pgx.Tx, id string) error {
	faces, err := s.faceVectors(ctx, tx, "sf.stranger_id = $1", id, 100000)
	if err != nil {
		return err
	}
	var c []byte // no faces left: the centroid stays
	if len(faces) > 0 {
		c = event.PackVector(Centroid(faces))
	}
	_, err = tx.Exec(ctx, `UPDATE strangers s SET centroid = coalesce($2, s.centroid), faces = x.n, first_seen = coalesce(x.first, s.first_seen),
			last_seen = coalesce(x.last, s.last_seen), updated_at = now()
		FROM (SELECT count(*) AS n, min(event_time) AS first, max(event_time) AS last FROM stranger_faces WHERE stranger_id = $1) x
		WHERE s.id = $1`, id, c)
	return err
}

// Entry is a watch-list entry made at run time.
type Entry struct {
	Seq        int64
	ID, Name   string
	List       string
	Embeddings [][]float32
	Model      string
}

// Entries returns the watch-list entries made after seq, oldest first: what every node's
// gallery follows.
func Entries(ctx context.Context, pool *pgxpool.Pool, seq int64) ([]Entry, error) {
	rows, err := pool.Query(ctx, `SELECT seq, id, name, list, embeddings, model FROM watchlist_entries WHERE seq > $1 ORDER BY seq LIMIT 1000`, seq)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var bs [][]byte
		err := r.Scan(&e.Seq, &e.ID, &e.Name, &e.List, &bs, &e.Model)
		for _, b := range bs {
			v := make([]float32, len(b)/4)
			event.UnpackVector(b, v)
			e.Embeddings = append(e.Embeddings, v)
		}
		return e, err
	})
}
