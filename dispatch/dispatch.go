// Package dispatch is the police post's side of an alert: acknowledging it, sending it to patrol
// officers (chosen by name, or the nearest on duty by their last reported position on the site
// map), and the officers' answers (acknowledged, on scene). Everything is in PostgreSQL and in
// the audit chain; every change is also pushed to the subscribers (the console's and the patrol
// devices' event streams).
package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
)

// Errors the API maps to status codes.
var (
	ErrInvalid   = errors.New("dispatch: invalid request")
	ErrNotFound  = errors.New("dispatch: not found")
	ErrForbidden = errors.New("dispatch: not yours")
	ErrNoOfficer = errors.New("dispatch: no patrol officer on duty with a known position")
)

// Dispatch is one alert sent to one officer.
type Dispatch struct {
	ID        int64     `json:"id"`
	EventID   string    `json:"event_id"`
	Camera    string    `json:"camera"`
	Summary   string    `json:"summary"`
	OfficerID int64     `json:"officer_id"`
	Officer   string    `json:"officer"`
	SentBy    string    `json:"sent_by"`
	SentAt    time.Time `json:"sent_at"`
	Status    string    `json:"status"` // sent, acknowledged, on_scene, closed
	UpdatedAt time.Time `json:"updated_at"`
}

// Officer is a patrol principal and its last reported position.
type Officer struct {
	ID     int64      `json:"id"`
	Name   string     `json:"name"`
	X      *float64   `json:"x,omitempty"`
	Y      *float64   `json:"y,omitempty"`
	OnDuty bool       `json:"on_duty"`
	At     *time.Time `json:"at,omitempty"`
}

// Update is what subscribers receive.
type Update struct {
	Type     string    `json:"type"` // dispatch, status, position, ack, map, sensor
	Dispatch *Dispatch `json:"dispatch,omitempty"`
	Officer  *Officer  `json:"officer,omitempty"`
	Sensor   *Sensor   `json:"sensor,omitempty"`
	EventID  string    `json:"event_id,omitempty"`
	By       string    `json:"by,omitempty"`
	Note     string    `json:"note,omitempty"`
}

// Service keeps alerts, dispatches and positions.
type Service struct {
	pool  *pgxpool.Pool
	trail *audit.Chain

	mu      sync.Mutex
	subs    map[*Sub]struct{}
	onAlarm func(SensorAlarm)
}

// New returns the service.
func New(pool *pgxpool.Pool, trail *audit.Chain) *Service {
	return &Service{pool: pool, trail: trail, subs: map[*Sub]struct{}{}}
}

// Sub is one subscriber: an officer's device sees only its own dispatches (OfficerID set), the
// police post sees everything.
type Sub struct {
	C         chan Update
	OfficerID int64 // 0: everything
	gone      chan struct{}
	once      sync.Once
}

// Gone is closed when the subscriber fell too far behind and was dropped.
func (s *Sub) Gone() <-chan struct{} { return s.gone }

// Subscribe registers a subscriber; cancel removes it.
func (s *Service) Subscribe(officerID int64) (*Sub, func()) {
	sub := &Sub{C: make(chan Update, 64), OfficerID: officerID, gone: make(chan struct{})}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub, func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}
}

func (s *Service) publish(u Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		if sub.OfficerID != 0 && (u.Dispatch == nil || u.Dispatch.OfficerID != sub.OfficerID) {
			continue
		}
		select {
		case sub.C <- u:
		default: // too slow: it must reconnect and reload
			sub.once.Do(func() { close(sub.gone) })
		}
	}
}

// change runs fn and the change's audit row in one transaction (detail is read after fn, which
// may fill it in).
func (s *Service) change(ctx context.Context, who auth.Actor, action, reason string, detail any, fn func(tx pgx.Tx) error) error {
	_, err := s.trail.Change(ctx, audit.Entry{Actor: who.Name, Role: who.Role, Action: action, Reason: reason},
		func() json.RawMessage { b, _ := json.Marshal(detail); return b }, fn)
	return err
}

// Ack records that the police post handled an alert.
func (s *Service) Ack(ctx context.Context, who auth.Actor, eventID, camera, note string) error {
	if eventID == "" || camera == "" {
		return fmt.Errorf("%w: an alert needs its event id and camera", ErrInvalid)
	}
	if err := s.change(ctx, who, "alert.ack", note, map[string]any{"event": eventID, "camera": camera}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO alert_acks (event_id, camera, acked_by, note) VALUES ($1, $2, $3, $4)
			ON CONFLICT (event_id) DO NOTHING`, eventID, camera, who.Name, note)
		return err
	}); err != nil {
		return err
	}
	s.publish(Update{Type: "ack", EventID: eventID, By: who.Name, Note: note})
	return nil
}

// Acked returns which of the events were acknowledged, and by whom.
func (s *Service) Acked(ctx context.Context, eventIDs []string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, acked_by FROM alert_acks WHERE event_id = ANY($1)`, eventIDs)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var id, by string
		err := r.Scan(&id, &by)
		out[id] = by
		return struct{}{}, err
	})
	return out, err
}

// Request is a dispatch order: to these officers, or to the nearest on-duty ones.
type Request struct {
	EventID  string  `json:"event_id"`
	Camera   string  `json:"camera"`
	Summary  string  `json:"summary"`
	Officers []int64 `json:"officers"`
	Nearest  int     `json:"nearest"`
}

// Send dispatches an alert. at is the camera's position on the site map (for Nearest); nil when
// the camera is not placed.
func (s *Service) Send(ctx context.Context, who auth.Actor, req Request, at *[2]float64) ([]Dispatch, error) {
	if req.EventID == "" || req.Camera == "" {
		return nil, fmt.Errorf("%w: a dispatch needs the alert's event id and camera", ErrInvalid)
	}
	if len(req.Officers) == 0 && req.Nearest <= 0 {
		return nil, fmt.Errorf("%w: name officers, or ask for the nearest n", ErrInvalid)
	}
	officers := req.Officers
	if len(officers) == 0 {
		if at == nil {
			return nil, fmt.Errorf("%w: camera %s is not placed on the site map, so nobody is nearest; name the officers", ErrInvalid, req.Camera)
		}
		all, err := s.Officers(ctx)
		if err != nil {
			return nil, err
		}
		type cand struct {
			id int64
			d  float64
		}
		var cs []cand
		for _, o := range all {
			if o.OnDuty && o.X != nil && o.At != nil && time.Since(*o.At) < 30*time.Minute {
				cs = append(cs, cand{o.ID, math.Hypot(*o.X-at[0], *o.Y-at[1])})
			}
		}
		if len(cs) == 0 {
			return nil, ErrNoOfficer
		}
		slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(a.d, b.d) })
		for _, c := range cs[:min(req.Nearest, len(cs))] {
			officers = append(officers, c.id)
		}
	}
	officers = slices.Compact(slices.Sorted(slices.Values(officers)))
	var active int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM principals WHERE id = ANY($1) AND role = 'patrol' AND revoked_at IS NULL`, officers).Scan(&active); err != nil {
		return nil, err
	}
	if active != len(officers) {
		return nil, fmt.Errorf("%w: %d of the %d officers named are not active patrol officers", ErrInvalid, len(officers)-active, len(officers))
	}
	var out []Dispatch
	err := s.change(ctx, who, "alert.dispatch", req.Summary, map[string]any{"event": req.EventID, "camera": req.Camera, "officers": officers}, func(tx pgx.Tx) error {
		out = out[:0]
		for _, id := range officers {
			var d Dispatch
			err := tx.QueryRow(ctx, `WITH p AS (SELECT id, name FROM principals WHERE id = $1 AND role = 'patrol' AND revoked_at IS NULL)
				INSERT INTO dispatches (event_id, camera, summary, officer_id, sent_by)
				SELECT $2, $3, $4, p.id, $5 FROM p
				ON CONFLICT (event_id, officer_id) DO UPDATE SET status = 'sent', sent_by = EXCLUDED.sent_by, sent_at = now(), updated_at = now()
				RETURNING id, event_id, camera, summary, officer_id, (SELECT name FROM p), sent_by, sent_at, status, updated_at`,
				id, req.EventID, req.Camera, req.Summary, who.Name).
				Scan(&d.ID, &d.EventID, &d.Camera, &d.Summary, &d.OfficerID, &d.Officer, &d.SentBy, &d.SentAt, &d.Status, &d.UpdatedAt)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w: principal %d is not an active patrol officer", ErrInvalid, id)
			}
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		s.publish(Update{Type: "dispatch", Dispatch: &out[i]})
	}
	return out, nil
}

// SetStatus is an officer's answer to a dispatch sent to them.
func (s *Service) SetStatus(ctx context.Context, officer *auth.Principal, id int64, status string) (*Dispatch, error) {
	if status != "acknowledged" && status != "on_scene" && status != "closed" {
		return nil, fmt.Errorf("%w: status is acknowledged, on_scene or closed", ErrInvalid)
	}
	var d Dispatch
	detail := map[string]any{"dispatch": id}
	err := s.change(ctx, auth.Actor{Name: officer.Name, Role: officer.Role}, "dispatch."+status, "", detail, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE dispatches SET status = $3, updated_at = now() WHERE id = $1 AND officer_id = $2
			RETURNING id, event_id, camera, summary, officer_id, sent_by, sent_at, status, updated_at`, id, officer.ID, status).
			Scan(&d.ID, &d.EventID, &d.Camera, &d.Summary, &d.OfficerID, &d.SentBy, &d.SentAt, &d.Status, &d.UpdatedAt)
		detail["event"] = d.EventID
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		_ = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dispatches WHERE id = $1)`, id).Scan(&exists)
		if exists {
			return nil, ErrForbidden
		}
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	d.Officer = officer.Name
	s.publish(Update{Type: "status", Dispatch: &d})
	return &d, nil
}

// List is the recent dispatches: an officer's own (officerID set) or everyone's.
func (s *Service) List(ctx context.Context, officerID int64, since time.Time) ([]Dispatch, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.id, d.event_id, d.camera, d.summary, d.officer_id, p.name, d.sent_by, d.sent_at, d.status, d.updated_at
		FROM dispatches d JOIN principals p ON p.id = d.officer_id
		WHERE d.sent_at >= $1 AND ($2 = 0 OR d.officer_id = $2) ORDER BY d.sent_at DESC LIMIT 500`, since, officerID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dispatch, error) {
		var d Dispatch
		err := r.Scan(&d.ID, &d.EventID, &d.Camera, &d.Summary, &d.OfficerID, &d.Officer, &d.SentBy, &d.SentAt, &d.Status, &d.UpdatedAt)
		return d, err
	})
}

// ForEvents is the dispatches of the given alerts, by event, oldest first.
func (s *Service) ForEvents(ctx context.Context, eventIDs []string) (map[string][]Dispatch, error) {
	out := map[string][]Dispatch{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT d.id, d.event_id, d.camera, d.summary, d.officer_id, p.name, d.sent_by, d.sent_at, d.status, d.updated_at
		FROM dispatches d JOIN principals p ON p.id = d.officer_id
		WHERE d.event_id = ANY($1) ORDER BY d.sent_at`, eventIDs)
	if err != nil {
		return nil, err
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dispatch, error) {
		var d Dispatch
		err := r.Scan(&d.ID, &d.EventID, &d.Camera, &d.Summary, &d.OfficerID, &d.Officer, &d.SentBy, &d.SentAt, &d.Status, &d.UpdatedAt)
		return d, err
	})
	for _, d := range ds {
		out[d.EventID] = append(out[d.EventID], d)
	}
	return out, err
}

// ReportPosition records an officer's position on the site map (0..1 each way) and duty.
func (s *Service) ReportPosition(ctx context.Context, officer *auth.Principal, x, y float64, onDuty bool) error {
	if x < 0 || x > 1 || y < 0 || y > 1 || math.IsNaN(x) || math.IsNaN(y) {
		return fmt.Errorf("%w: x and y are fractions of the site map, 0 to 1", ErrInvalid)
	}
	var at time.Time
	err := s.pool.QueryRow(ctx, `INSERT INTO officer_positions (officer_id, x, y, on_duty) VALUES ($1, $2, $3, $4)
		ON CONFLICT (officer_id) DO UPDATE SET x = $2, y = $3, on_duty = $4, at = now() RETURNING at`, officer.ID, x, y, onDuty).Scan(&at)
	if err != nil {
		return err
	}
	s.publish(Update{Type: "position", Officer: &Officer{ID: officer.ID, Name: officer.Name, X: &x, Y: &y, OnDuty: onDuty, At: &at}})
	return nil
}

// Officers lists the active patrol principals with their last positions.
func (s *Service) Officers(ctx context.Context) ([]Officer, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.id, p.name, o.x, o.y, coalesce(o.on_duty, false), o.at
		FROM principals p LEFT JOIN officer_positions o ON o.officer_id = p.id
		WHERE p.role = 'patrol' AND p.revoked_at IS NULL ORDER BY p.name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Officer, error) {
		var o Officer
		err := r.Scan(&o.ID, &o.Name, &o.X, &o.Y, &o.OnDuty, &o.At)
		return o, err
	})
}
