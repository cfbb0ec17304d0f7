package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

// The staff's read side: people, units, leases, rules, schedules and groups as the console lists
// them, a page at a time (ordered by id; After is the last id of the page before).

// PersonRow is a person in a list.
type PersonRow struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Blacklisted bool      `json:"blacklisted"`
	Units       []string  `json:"units"` // where a lease is in force or ahead
	CreatedAt   time.Time `json:"created_at"`
}

// PeopleFilter selects people: ID one person, Q a part of the name (or the id), Unit a unit they
// lease, Card or Plate a credential's value (looked up by its keyed hash), Kind resident,
// visitor or staff.
type PeopleFilter struct {
	ID, Q, Unit, Card, Plate, Kind string
	After                          string
	Limit                          int
}

// People lists the people f selects, by id.
func (e *Engine) People(ctx context.Context, f PeopleFilter) ([]PersonRow, error) {
	var ids []string
	if f.ID != "" {
		ids = []string{f.ID}
	}
	if f.Card != "" || f.Plate != "" {
		kind, value := KindCard, f.Card
		if f.Plate != "" {
			kind, value = KindPlate, plate.Normalize(f.Plate)
		}
		c := e.snapshot().held(kind, value)
		if c == nil || f.ID != "" && c.person != f.ID {
			return []PersonRow{}, nil
		}
		ids = []string{c.person}
	}
	rows, err := e.pool.Query(ctx, `SELECT p.id, p.name, p.kind, p.blacklisted, p.created_at,
			coalesce(array_agg(DISTINCT l.unit_id ORDER BY l.unit_id) FILTER (WHERE l.ends > now()), '{}')
		FROM people p LEFT JOIN leases l ON l.person_id = p.id
		WHERE ($1 = '' OR p.id = $1 OR lower(p.name) LIKE '%' || lower($1) || '%')
		  AND ($2 = '' OR EXISTS (SELECT 1 FROM leases u WHERE u.person_id = p.id AND u.unit_id = $2))
		  AND ($3 = '' OR p.kind = $3)
		  AND ($4::text[] IS NULL OR p.id = ANY($4))
		  AND p.id > $5
		GROUP BY p.id ORDER BY p.id LIMIT $6`, likeFree(f.Q), f.Unit, f.Kind, ids, f.After, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PersonRow, error) {
		var p PersonRow
		return p, r.Scan(&p.ID, &p.Name, &p.Kind, &p.Blacklisted, &p.CreatedAt, &p.Units)
	})
}

// likeFree drops LIKE's wildcards from a search term: a name is matched as typed.
func likeFree(q string) string {
	return strings.NewReplacer("%", "", "_", "", `\`, "").Replace(strings.TrimSpace(q))
}

// LeaseRow is a lease with its person's and unit's names.
type LeaseRow struct {
	ID         int64     `json:"id"`
	Person     string    `json:"person"`
	PersonName string    `json:"person_name"`
	Unit       string    `json:"unit"`
	Building   string    `json:"building"`
	Starts     time.Time `json:"starts"`
	Ends       time.Time `json:"ends"`
}

// CredentialRow is a credential as staff see it: never its secret, but a car's plate.
type CredentialRow struct {
	ID         int64      `json:"id"`
	Kind       string     `json:"kind"`
	Plate      string     `json:"plate,omitempty"`
	Duress     bool       `json:"duress,omitempty"`
	ValidFrom  *time.Time `json:"valid_from,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// PersonDetail is one person with everything staff manage of them.
type PersonDetail struct {
	PersonRow
	Leases      []LeaseRow      `json:"leases"`
	Credentials []CredentialRow `json:"credentials"`
	Faces       int             `json:"faces"` // face templates enrolled
	Groups      []string        `json:"groups"`
	AppAccess   int             `json:"app_access"` // live resident tokens bound to the person
}

// Person reads one person.
func (e *Engine) Person(ctx context.Context, id string) (*PersonDetail, error) {
	rows, err := e.People(ctx, PeopleFilter{ID: id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no person %q", ErrNotFound, id)
	}
	d := &PersonDetail{PersonRow: rows[0]}
	if d.Leases, err = e.Leases(ctx, LeaseFilter{Person: id, Limit: 1000}); err != nil {
		return nil, err
	}
	if d.Credentials, err = e.credentialsOf(ctx, id); err != nil {
		return nil, err
	}
	err = e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM face_templates WHERE person_id = $1),
		(SELECT coalesce(array_agg(group_id ORDER BY group_id), '{}') FROM group_members WHERE person_id = $1),
		(SELECT count(*) FROM principals WHERE person_id = $1 AND revoked_at IS NULL)`, id).Scan(&d.Faces, &d.Groups, &d.AppAccess)
	return d, err
}

func (e *Engine) credentialsOf(ctx context.Context, person string) ([]CredentialRow, error) {
	rows, err := e.pool.Query(ctx, `SELECT id, kind, duress, valid_from, valid_until, revoked_at, created_at, secret_enc
		FROM credentials WHERE person_id = $1 ORDER BY id`, person)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (CredentialRow, error) {
		var c CredentialRow
		var enc []byte
		if err := r.Scan(&c.ID, &c.Kind, &c.Duress, &c.ValidFrom, &c.ValidUntil, &c.RevokedAt, &c.CreatedAt, &enc); err != nil {
			return c, err
		}
		if c.Kind == KindPlate && enc != nil {
			_, c.Plate, _ = e.secrets.open(enc)
		}
		return c, nil
	})
}

// LeaseFilter selects leases: a person's, a unit's, or those ending in [EndsFrom, EndsTo).
// Lists by id go on after AfterID; the calendar (EndsFrom set) goes on after (AfterEnds, AfterID).
type LeaseFilter struct {
	Person, Unit     string
	EndsFrom, EndsTo time.Time
	AfterEnds        time.Time
	AfterID          int64
	Limit            int
}

// Leases lists the leases f selects: by id, or by end then id for the calendar of leases ending.
func (e *Engine) Leases(ctx context.Context, f LeaseFilter) ([]LeaseRow, error) {
	var from, to *time.Time
	if !f.EndsFrom.IsZero() {
		from, to = &f.EndsFrom, &f.EndsTo
	}
	order, after := "l.id", "l.id > $5"
	args := []any{f.Person, f.Unit, from, to, f.AfterID, f.Limit}
	if from != nil {
		order, after = "l.ends, l.id", "(l.ends, l.id) > ($7, $5)"
		args = append(args, f.AfterEnds)
	}
	rows, err := e.pool.Query(ctx, `SELECT l.id, l.person_id, p.name, l.unit_id, u.building, l.starts, l.ends
		FROM leases l JOIN people p ON p.id = l.person_id JOIN units u ON u.id = l.unit_id
		WHERE ($1 = '' OR l.person_id = $1) AND ($2 = '' OR l.unit_id = $2)
		  AND ($3::timestamptz IS NULL OR l.ends >= $3) AND ($4::timestamptz IS NULL OR l.ends < $4)
		  AND `+after+`
		ORDER BY `+order+` LIMIT $6`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LeaseRow, error) {
		var l LeaseRow
		return l, r.Scan(&l.ID, &l.Person, &l.PersonName, &l.Unit, &l.Building, &l.Starts, &l.Ends)
	})
}

// EndLease ends a lease at at (now when zero): the person's cards, PINs, faces, plates and the
// visitors they invited stop opening the doors it gave, and controllers drop them at their next
// sync. A lease that had not started yet is cancelled whole.
func (e *Engine) EndLease(ctx context.Context, who auth.Actor, id int64, at time.Time, reason string) (LeaseRow, error) {
	if at.IsZero() {
		at = e.now()
	}
	var l LeaseRow
	err := e.change(ctx, who, "lease.end", map[string]any{"lease": id, "at": at, "reason": reason}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE leases SET ends = CASE WHEN $2 <= starts THEN starts + interval '1 microsecond' ELSE least(ends, $2) END
			WHERE id = $1 RETURNING id, person_id, unit_id, starts, ends`, id, at).Scan(&l.ID, &l.Person, &l.Unit, &l.Starts, &l.Ends)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: no lease %d", ErrNotFound, id)
		}
		return err
	})
	return l, err
}

// UnitRow is a unit with how many leases are in force there.
type UnitRow struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Building  string `json:"building"`
	Residents int    `json:"residents"`
}

// Units lists units by id: Q a part of the id or name, Building one building's.
func (e *Engine) Units(ctx context.Context, q, building, after string, limit int) ([]UnitRow, error) {
	rows, err := e.pool.Query(ctx, `SELECT u.id, u.name, u.building,
			(SELECT count(*) FROM leases l WHERE l.unit_id = u.id AND l.starts <= now() AND l.ends > now())
		FROM units u WHERE ($1 = '' OR lower(u.id) LIKE '%' || lower($1) || '%' OR lower(u.name) LIKE '%' || lower($1) || '%')
		  AND ($2 = '' OR u.building = $2) AND u.id > $3 ORDER BY u.id LIMIT $4`, likeFree(q), building, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UnitRow, error) {
		var u UnitRow
		return u, r.Scan(&u.ID, &u.Name, &u.Building, &u.Residents)
	})
}

// RuleRow is a door's rule.
type RuleRow struct {
	ID       int64  `json:"id"`
	Door     string `json:"door"`
	WhoKind  string `json:"who_kind"`
	Who      string `json:"who"`
	Schedule string `json:"schedule,omitempty"`
	Factors  string `json:"factors,omitempty"`
}

// Rules lists the rules of a door (every door's when door is empty), by id.
func (e *Engine) Rules(ctx context.Context, door string, afterID int64, limit int) ([]RuleRow, error) {
	rows, err := e.pool.Query(ctx, `SELECT id, door_id, who_kind, who, coalesce(schedule_id, ''), factors FROM rules
		WHERE ($1 = '' OR door_id = $1) AND id > $2 ORDER BY id LIMIT $3`, door, afterID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RuleRow, error) {
		var ru RuleRow
		return ru, r.Scan(&ru.ID, &ru.Door, &ru.WhoKind, &ru.Who, &ru.Schedule, &ru.Factors)
	})
}

// RemoveRule deletes one rule.
func (e *Engine) RemoveRule(ctx context.Context, who auth.Actor, id int64) error {
	return e.change(ctx, who, "rule.remove", map[string]any{"rule": id}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM rules WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: no rule %d", ErrNotFound, id)
		}
		return err
	})
}

// ScheduleRow is a schedule as stored.
type ScheduleRow struct {
	ID       string          `json:"id"`
	Weekly   json.RawMessage `json:"weekly"`
	Holidays json.RawMessage `json:"holidays"`
	TZ       string          `json:"tz"`
}

// Schedules lists the schedules by id.
func (e *Engine) Schedules(ctx context.Context, after string, limit int) ([]ScheduleRow, error) {
	rows, err := e.pool.Query(ctx, `SELECT id, weekly, holidays, tz FROM schedules WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ScheduleRow, error) {
		var s ScheduleRow
		var w, h []byte
		err := r.Scan(&s.ID, &w, &h, &s.TZ)
		s.Weekly, s.Holidays = w, h
		return s, err
	})
}

// GroupRow is a group with its members' ids.
type GroupRow struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// Groups lists the groups by id, each with its members.
func (e *Engine) Groups(ctx context.Context, after string, limit int) ([]GroupRow, error) {
	rows, err := e.pool.Query(ctx, `SELECT g.id, g.name, coalesce(array_agg(m.person_id ORDER BY m.person_id) FILTER (WHERE m.person_id IS NOT NULL), '{}')
		FROM groups g LEFT JOIN group_members m ON m.group_id = g.id WHERE g.id > $1 GROUP BY g.id ORDER BY g.id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupRow, error) {
		var g GroupRow
		return g, r.Scan(&g.ID, &g.Name, &g.Members)
	})
}

// RemoveGroupMember takes a person out of a group.
func (e *Engine) RemoveGroupMember(ctx context.Context, who auth.Actor, group, person string) error {
	return e.change(ctx, who, "group.member.remove", map[string]string{"group": group, "person": person}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = $1 AND person_id = $2`, group, person)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s is not in group %s", ErrNotFound, person, group)
		}
		return err
	})
}

// RemoveSchedule deletes a schedule no rule uses.
func (e *Engine) RemoveSchedule(ctx context.Context, who auth.Actor, id string) error {
	return e.change(ctx, who, "schedule.remove", map[string]string{"schedule": id}, func(tx pgx.Tx) error {
		var used int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM rules WHERE schedule_id = $1`, id).Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			return fmt.Errorf("%w: %d rules use schedule %s: remove them first", ErrInvalid, used, id)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM schedules WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: no schedule %q", ErrNotFound, id)
		}
		return err
	})
}

// DoorChange is what PUT /v1/doors/{id} may change of a door (nil: unchanged). Its key and id
// stay.
type DoorChange struct {
	Name         *string `json:"name"`
	Camera       *string `json:"camera"`
	Area         *string `json:"area"`
	Direction    *string `json:"direction"`
	AntiPassback *bool   `json:"anti_passback"`
	FailMode     *string `json:"fail_mode"`
	PulseMS      *int    `json:"pulse_ms"`
	CameraOpens  *string `json:"camera_opens"`
	PlatePolicy  *string `json:"plate_policy"`
}

// UpdateDoor changes a door's settings.
func (e *Engine) UpdateDoor(ctx context.Context, who auth.Actor, id string, c DoorChange) (Door, error) {
	d, ok := e.Door(id)
	if !ok {
		return Door{}, fmt.Errorf("%w: no door %q", ErrNotFound, id)
	}
	n := *d
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&n.Name, c.Name)
	set(&n.Camera, c.Camera)
	set(&n.Area, c.Area)
	set(&n.Direction, c.Direction)
	set(&n.FailMode, c.FailMode)
	set(&n.CameraOpens, c.CameraOpens)
	set(&n.PlatePolicy, c.PlatePolicy)
	if c.AntiPassback != nil {
		n.AntiPassback = *c.AntiPassback
	}
	if c.PulseMS != nil {
		n.PulseMS = *c.PulseMS
	}
	switch {
	case n.Direction != "in" && n.Direction != "out":
		return Door{}, fmt.Errorf("%w: direction is in or out", ErrInvalid)
	case n.FailMode != "secure" && n.FailMode != "safe":
		return Door{}, fmt.Errorf("%w: fail_mode is secure or safe", ErrInvalid)
	case n.PulseMS < 100 || n.PulseMS > 60000:
		return Door{}, fmt.Errorf("%w: pulse_ms is 100 to 60000", ErrInvalid)
	case n.CameraOpens != CameraFaces && n.CameraOpens != CameraPlates && n.CameraOpens != CameraBoth:
		return Door{}, fmt.Errorf("%w: camera_opens is faces, plates or both", ErrInvalid)
	}
	if err := checkPlatePolicy(n.PlatePolicy); err != nil {
		return Door{}, err
	}
	err := e.change(ctx, who, "door.update", map[string]any{"door": id, "change": c}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE doors SET name = $2, camera = $3, area = $4, direction = $5, anti_passback = $6, fail_mode = $7,
			pulse_ms = $8, camera_opens = $9, plate_policy = $10 WHERE id = $1`, id, n.Name, n.Camera, n.Area, n.Direction, n.AntiPassback,
			n.FailMode, n.PulseMS, n.CameraOpens, n.PlatePolicy)
		return err
	})
	return n, err
}
