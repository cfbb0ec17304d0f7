package access

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

// KindPlate is a car's plate as a credential (residents' and staff cars, visitors' cars from
// their invitations). It is read by a gate's plate camera, not presented at a reader.
const KindPlate = "plate"

// Visits' bounds: how long one may last, how far ahead it may start, how many live ones a
// resident may hold at once.
const (
	MaxVisitLength  = 7 * 24 * time.Hour
	MaxVisitAhead   = 30 * 24 * time.Hour
	MaxLiveVisits   = 20
	visitNameLength = 100
)

// visit is a visit as the snapshot holds it.
type visit struct {
	id, sponsor  string
	doors        []string
	starts, ends time.Time
}

// loadVisits reads the live visits (and those ended in the last day, so that a late QR code is
// told it expired rather than that it is unknown).
func (s *snapshot) loadVisits(ctx context.Context, tx pgx.Tx) error {
	s.visits = map[string][]visit{}
	rows, _ := tx.Query(ctx, `SELECT id, visitor_id, sponsor_id, doors, starts, ends FROM visits
		WHERE revoked_at IS NULL AND ends > now() - interval '1 day'`)
	var v visit
	var visitor string
	_, err := pgx.ForEachRow(rows, []any{&v.id, &visitor, &v.sponsor, &v.doors, &v.starts, &v.ends}, func() error {
		s.visits[visitor] = append(s.visits[visitor], v)
		return nil
	})
	return err
}

// leaseRefusal is why a resident opens nothing at now: every lease they hold has ended or none
// has started. Residents registered without a lease are left to their rules.
func (p *person) leaseRefusal(now time.Time) string {
	if p.kind != "resident" || len(p.leases) == 0 {
		return ""
	}
	why := DenyLeaseEnded
	for _, l := range p.leases {
		switch {
		case now.Before(l.starts):
			why = DenyLeaseFuture
		case now.Before(l.ends):
			return ""
		}
	}
	return why
}

// visitAllows reports whether one of a visitor's visits opens the door at now, or why not: the
// visit must name the door, be in its window, and its sponsor must have the right to the door
// then too (not blacklisted, a lease in force, a rule of the door naming them).
func (s *snapshot) visitAllows(doorID string, p *person, now time.Time) (bool, string) {
	why := ""
	for _, v := range s.visits[p.id] {
		if !slices.Contains(v.doors, doorID) {
			continue
		}
		switch {
		case now.Before(v.starts):
			why = DenyNotYetValid
			continue
		case !now.Before(v.ends):
			why = DenyExpired
			continue
		}
		sp := s.people[v.sponsor]
		if sp == nil || sp.kind == "visitor" || sp.blacklisted || sp.leaseRefusal(now) != "" || s.ruleFor(doorID, sp) != "" {
			why = DenySponsor
			continue
		}
		return true, ""
	}
	return false, why
}

// ruleFor is whether a rule of the door names p with a lease in force at the unit (schedules and
// factors aside: a sponsor's right to invite, not a decision to open).
func (s *snapshot) ruleFor(doorID string, p *person) string {
	for _, r := range s.rules[doorID] {
		if r.names(p) {
			return ""
		}
	}
	return DenyNoRule
}

// SponsorDoors lists the doors a resident may invite a visitor to: those whose rules name them.
func (e *Engine) SponsorDoors(person string) []string {
	s := e.snapshot()
	p := s.people[person]
	if p == nil {
		return nil
	}
	var out []string
	for id := range s.doors {
		if s.ruleFor(id, p) == "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// VisitRequest is a resident's invitation of a visitor.
type VisitRequest struct {
	Name  string    `json:"name"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	Plate string    `json:"plate,omitempty"`
	Doors []string  `json:"doors,omitempty"` // default: every door the resident may open
}

// Visit is one invitation, as its resident sees it.
type Visit struct {
	ID        string      `json:"id"`
	Visitor   string      `json:"visitor"` // the visitor's person id
	Name      string      `json:"name"`
	Sponsor   string      `json:"sponsor"`
	Doors     []string    `json:"doors"`
	From      time.Time   `json:"from"`
	Until     time.Time   `json:"until"`
	Plate     string      `json:"plate,omitempty"`
	RevokedAt *time.Time  `json:"revoked_at,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	Uses      []DoorEvent `json:"uses"`
}

// ErrNotFound means the thing asked for does not exist (or is not the caller's).
var ErrNotFound = errors.New("access: not found")

// Invite registers a visitor for sponsor: a visitor person, a visit at doors within the
// sponsor's rights, a QR code valid in the window and, with a plate, the car's plate credential.
// It returns the visit and the QR code's payload (shown once).
func (e *Engine) Invite(ctx context.Context, who auth.Actor, sponsor string, r VisitRequest) (Visit, string, error) {
	now := e.now()
	r.Name = strings.TrimSpace(r.Name)
	switch {
	case r.Name == "" || len([]rune(r.Name)) > visitNameLength:
		return Visit{}, "", fmt.Errorf("%w: a visitor needs a name of at most %d characters", ErrInvalid, visitNameLength)
	case !r.Until.After(r.From):
		return Visit{}, "", fmt.Errorf("%w: until must be after from", ErrInvalid)
	case r.Until.Sub(r.From) > MaxVisitLength:
		return Visit{}, "", fmt.Errorf("%w: a visit lasts at most %v", ErrInvalid, MaxVisitLength)
	case !r.Until.After(now):
		return Visit{}, "", fmt.Errorf("%w: the visit would be over already", ErrInvalid)
	case r.From.After(now.Add(MaxVisitAhead)):
		return Visit{}, "", fmt.Errorf("%w: a visit starts at most %v ahead", ErrInvalid, MaxVisitAhead)
	}
	s := e.snapshot()
	sp := s.people[sponsor]
	if sp == nil || sp.kind == "visitor" {
		return Visit{}, "", fmt.Errorf("%w: only residents and staff invite visitors", ErrInvalid)
	}
	if why := sp.leaseRefusal(r.From); why != "" || sp.blacklisted {
		return Visit{}, "", fmt.Errorf("%w: you may not invite anyone for that time (%s)", ErrInvalid, cmp.Or(why, DenyBlacklisted))
	}
	mine := e.SponsorDoors(sponsor)
	if len(r.Doors) == 0 {
		r.Doors = mine
	}
	for _, d := range r.Doors {
		if !slices.Contains(mine, d) {
			return Visit{}, "", fmt.Errorf("%w: door %q is not one of yours", ErrInvalid, d)
		}
	}
	if len(r.Doors) == 0 {
		return Visit{}, "", fmt.Errorf("%w: you have no door to invite a visitor to", ErrInvalid)
	}
	if r.Plate != "" {
		r.Plate = plate.Normalize(r.Plate)
		if !plate.Valid(r.Plate, "") {
			return Visit{}, "", fmt.Errorf("%w: %q is not a plate (a province, a letter, then 5 or 6 letters and digits)", ErrInvalid, r.Plate)
		}
	}
	var rnd [18]byte
	_, _ = rand.Read(rnd[:])
	id := "visit-" + base64.RawURLEncoding.EncodeToString(rnd[:6])
	visitor := "v-" + base64.RawURLEncoding.EncodeToString(rnd[6:12])
	qr := "VGLQR-" + base64.RawURLEncoding.EncodeToString(rnd[:])
	v := Visit{ID: id, Visitor: visitor, Name: r.Name, Sponsor: sponsor, Doors: r.Doors, From: r.From.UTC(), Until: r.Until.UTC(), Plate: r.Plate, CreatedAt: now.UTC(), Uses: []DoorEvent{}}
	detail := map[string]any{"visit": id, "person": visitor, "sponsor": sponsor, "doors": r.Doors, "from": v.From, "until": v.Until, "plate": r.Plate != ""}
	err := e.change(ctx, who, "visit.add", detail, func(tx pgx.Tx) error {
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM visits WHERE sponsor_id = $1 AND revoked_at IS NULL AND ends > now()`, sponsor).Scan(&live); err != nil {
			return err
		}
		if live >= MaxLiveVisits {
			return fmt.Errorf("%w: at most %d invitations at once: revoke one first", ErrInvalid, MaxLiveVisits)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO people (id, name, kind) VALUES ($1, $2, 'visitor')`, visitor, r.Name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO visits (id, visitor_id, sponsor_id, doors, starts, ends, plate) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id, visitor, sponsor, r.Doors, v.From, v.Until, r.Plate); err != nil {
			return err
		}
		creds := [][2]string{{KindQR, qr}}
		if r.Plate != "" {
			creds = append(creds, [2]string{KindPlate, r.Plate})
		}
		for _, c := range creds {
			if _, err := e.insertCredential(ctx, tx, visitor, NewCredential{Kind: c[0], Value: c[1], ValidFrom: &v.From, ValidUntil: &v.Until}); err != nil {
				return err
			}
		}
		return nil
	})
	return v, qr, err
}

// Visits lists a sponsor's invitations, newest first (at most limit), each with its uses.
func (e *Engine) Visits(ctx context.Context, sponsor string, limit int) ([]Visit, error) {
	rows, err := e.pool.Query(ctx, `SELECT v.id, v.visitor_id, p.name, v.doors, v.starts, v.ends, v.plate, v.revoked_at, v.created_at
		FROM visits v JOIN people p ON p.id = v.visitor_id WHERE v.sponsor_id = $1 ORDER BY v.created_at DESC LIMIT $2`, sponsor, limit)
	if err != nil {
		return nil, err
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Visit, error) {
		v := Visit{Sponsor: sponsor, Uses: []DoorEvent{}}
		return v, r.Scan(&v.ID, &v.Visitor, &v.Name, &v.Doors, &v.From, &v.Until, &v.Plate, &v.RevokedAt, &v.CreatedAt)
	})
	if err != nil || len(vs) == 0 {
		return vs, err
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.Visitor
	}
	uses, err := e.PersonEntries(ctx, ids, time.Now().AddDate(0, 0, -60), 500)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		for _, u := range uses {
			if u.Person == vs[i].Visitor {
				vs[i].Uses = append(vs[i].Uses, u)
			}
		}
	}
	return vs, nil
}

// RevokeVisit ends one of sponsor's invitations now: its QR code and plate stop opening.
func (e *Engine) RevokeVisit(ctx context.Context, who auth.Actor, sponsor, id string) error {
	return e.change(ctx, who, "visit.revoke", map[string]any{"visit": id, "sponsor": sponsor}, func(tx pgx.Tx) error {
		var visitor string
		err := tx.QueryRow(ctx, `UPDATE visits SET revoked_at = now() WHERE id = $1 AND sponsor_id = $2 AND revoked_at IS NULL RETURNING visitor_id`, id, sponsor).Scan(&visitor)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: no live invitation %q of yours", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE credentials SET revoked_at = now() WHERE person_id = $1 AND revoked_at IS NULL`, visitor)
		return err
	})
}

// PersonEntries lists the door decisions about any of persons since a time, newest first.
func (e *Engine) PersonEntries(ctx context.Context, persons []string, since time.Time, limit int) ([]DoorEvent, error) {
	rows, err := e.pool.Query(ctx, `SELECT seq, time, actor, action, reason, detail FROM audit
		WHERE action = 'door.decision' AND (detail::jsonb) ->> 'person' = ANY($1) AND time > $2
		ORDER BY seq DESC LIMIT $3`, persons, since, limit)
	if err != nil {
		return nil, err
	}
	evs, err := pgx.CollectRows(rows, scanDoorEvent)
	if err != nil {
		return nil, err
	}
	return evs, e.nameDoorEvents(ctx, evs)
}

// MayOpenNow reports whether the person's own rights open the door now (lease, rules, schedule;
// anti-passback aside): a resident's remote open from the app.
func (e *Engine) MayOpenNow(door, person string) bool {
	reason, _ := e.snapshot().rights(door, person, false, e.now(), func(string, string) (bool, bool) { return false, false }, true)
	return reason == Granted
}
