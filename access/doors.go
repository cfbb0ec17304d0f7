package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
)

// controllersSeen remembers when each door's controller last reached vigil (any signed call).
type controllersSeen struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (c *controllersSeen) touch(door string, t time.Time) {
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	c.seen[door] = t
	c.mu.Unlock()
}

func (c *controllersSeen) get(door string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[door]
}

// Seen records that a door's controller made a signed call (the API calls it after verifying).
func (e *Engine) Seen(door string) { e.ctrls.touch(door, e.now()) }

// DoorState is a door as the console shows it.
type DoorState struct {
	Door
	Online   bool       `json:"online"` // its controller was heard from in the last 60 s
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// Face is what a face may do there, and what that rests on.
	Face FaceRisk `json:"face"`
}

// Doors lists the doors with their controllers' state, by id.
func (e *Engine) Doors() []DoorState {
	s := e.snapshot()
	ds := make([]DoorState, 0, len(s.doors))
	for id, d := range s.doors {
		ds = append(ds, DoorState{Door: *d, Face: s.faceRisk(id)})
	}
	now := e.now()
	for i := range ds {
		if t := e.ctrls.get(ds[i].ID); !t.IsZero() {
			ds[i].LastSeen = &t
			ds[i].Online = now.Sub(t) < 60*time.Second
		}
	}
	slices.SortFunc(ds, func(a, b DoorState) int { return strings.Compare(a.ID, b.ID) })
	return ds
}

// RemoteUnlock opens a door from the console: audited with its reason first, then queued for
// the controller like an auto-unlock.
func (e *Engine) RemoteUnlock(ctx context.Context, who auth.Actor, door, reason string) (Command, error) {
	if reason == "" {
		return Command{}, fmt.Errorf("%w: a remote unlock needs a reason", ErrInvalid)
	}
	d, ok := e.Door(door)
	if !ok {
		return Command{}, fmt.Errorf("%w: no door %q", ErrInvalid, door)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	now := e.now()
	cmd := Command{ID: hex.EncodeToString(b[:]), Door: door, Action: "unlock", PulseMS: d.PulseMS, Reason: "remote_unlock",
		Issued: now, Expires: now.Add(10 * time.Second)}
	detail, _ := json.Marshal(map[string]any{"door": door, "command": cmd.ID, "grant": true, "reason": "remote_unlock"})
	if _, err := e.trail.Append(ctx, audit.Entry{Time: now, Actor: who.Name, Role: who.Role, Action: "door.unlock.remote", Reason: reason, Detail: detail}); err != nil {
		return Command{}, err
	}
	e.queue(d, cmd)
	return cmd, nil
}

// DoorEvent is one decision or unlock at a door, from the audit chain.
type DoorEvent struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Reason  string          `json:"reason"`
	Detail  json.RawMessage `json:"detail"`
	Grant   bool            `json:"grant"`
	Person  string          `json:"person,omitempty"`
	Name    string          `json:"person_name,omitempty"` // the person's name, as registered
	Outcome string          `json:"outcome"`               // the decision's reason code
}

// RecentAtDoor lists a door's latest decisions and remote unlocks (the last 7 days, newest first).
func (e *Engine) RecentAtDoor(ctx context.Context, door string, limit int) ([]DoorEvent, error) {
	rows, err := e.pool.Query(ctx, `SELECT seq, time, actor, action, reason, detail FROM audit
		WHERE time > now() - interval '7 days' AND action LIKE 'door.%' AND detail::jsonb->>'door' = $1
		ORDER BY seq DESC LIMIT $2`, door, limit)
	if err != nil {
		return nil, err
	}
	evs, err := pgx.CollectRows(rows, scanDoorEvent)
	if err != nil {
		return nil, err
	}
	return evs, e.nameDoorEvents(ctx, evs)
}

// scanDoorEvent reads an audit row (seq, time, actor, action, reason, detail) as a DoorEvent.
func scanDoorEvent(r pgx.CollectableRow) (DoorEvent, error) {
	var ev DoorEvent
	var detail string
	if err := r.Scan(&ev.Seq, &ev.Time, &ev.Actor, &ev.Action, &ev.Reason, &detail); err != nil {
		return ev, err
	}
	ev.Detail = json.RawMessage(detail)
	var d struct {
		Grant  bool   `json:"grant"`
		Person string `json:"person"`
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(ev.Detail, &d)
	ev.Grant, ev.Person, ev.Outcome = d.Grant, d.Person, d.Reason
	return ev, nil
}

// nameDoorEvents fills in the names of the people the events are about (erased people keep
// their id only).
func (e *Engine) nameDoorEvents(ctx context.Context, evs []DoorEvent) error {
	var ids []string
	for _, ev := range evs {
		if ev.Person != "" {
			ids = append(ids, ev.Person)
		}
	}
	names, err := e.PersonNames(ctx, ids)
	if err != nil {
		return err
	}
	for i := range evs {
		evs[i].Name = names[evs[i].Person]
	}
	return nil
}

// PersonNames gives the names of the people among ids (erased and unknown ids are left out).
func (e *Engine) PersonNames(ctx context.Context, ids []string) (map[string]string, error) {
	names := map[string]string{}
	if len(ids) == 0 {
		return names, nil
	}
	rows, err := e.pool.Query(ctx, `SELECT id, name FROM people WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	var id, name string
	_, err = pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		names[id] = name
		return nil
	})
	return names, err
}
