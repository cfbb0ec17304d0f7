package access

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckID validates an id chosen by an admin (people, units, doors, schedules).
func CheckID(what, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %s id %q: 1–64 letters, digits, '.', '_' or '-'", ErrInvalid, what, id)
	}
	return nil
}

// ErrInvalid marks an admin request that cannot be applied as given.
var ErrInvalid = errors.New("access: invalid")

// change runs one admin write and its audit row in one transaction (a change is never committed
// unaudited, nor audited uncommitted), then reloads the snapshot.
func (e *Engine) change(ctx context.Context, who auth.Actor, action string, detail any, fn func(tx pgx.Tx) error) error {
	d, _ := json.Marshal(detail)
	// Other nodes' and tools' changes reach every engine through the notice (see Watch).
	_, err := e.trail.Change(ctx, audit.Entry{Actor: who.Name, Role: who.Role, Action: action, Detail: d}, nil, audit.Notifying(ctx, "vigil_access", fn))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrExists, pgErr.Detail)
		case "23503", "23514", "22P02", "22007", "22008":
			return fmt.Errorf("%w: %s", ErrInvalid, pgErr.Message)
		}
	}
	if err != nil {
		return err
	}
	return e.Reload(ctx)
}

// AddUnit adds a unit (an apartment).
func (e *Engine) AddUnit(ctx context.Context, who auth.Actor, id, name, building string) error {
	if err := CheckID("unit", id); err != nil {
		return err
	}
	return e.change(ctx, who, "unit.add", map[string]string{"id": id, "name": name, "building": building}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO units (id, name, building) VALUES ($1, $2, $3)`, id, name, building)
		return err
	})
}

// AddPerson adds a resident, visitor or staff member.
func (e *Engine) AddPerson(ctx context.Context, who auth.Actor, id, name, kind string) error {
	if err := CheckID("person", id); err != nil {
		return err
	}
	if !slices.Contains([]string{"resident", "visitor", "staff"}, kind) || name == "" {
		return fmt.Errorf("%w: a person needs a name and a kind (resident, visitor, staff)", ErrInvalid)
	}
	return e.change(ctx, who, "person.add", map[string]string{"id": id, "name": name, "kind": kind}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO people (id, name, kind) VALUES ($1, $2, $3)`, id, name, kind)
		return err
	})
}

// SetBlacklisted puts a person on the blacklist or takes them off.
func (e *Engine) SetBlacklisted(ctx context.Context, who auth.Actor, id string, on bool, reason string) error {
	return e.change(ctx, who, "person.blacklist", map[string]any{"id": id, "blacklisted": on, "reason": reason}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE people SET blacklisted = $2 WHERE id = $1`, id, on)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: no person %q", ErrInvalid, id)
		}
		return err
	})
}

// AddLease gives a person a unit from starts to ends.
func (e *Engine) AddLease(ctx context.Context, who auth.Actor, person, unit string, starts, ends time.Time) error {
	if !ends.After(starts) {
		return fmt.Errorf("%w: a lease ends after it starts", ErrInvalid)
	}
	return e.change(ctx, who, "lease.add", map[string]any{"person": person, "unit": unit, "starts": starts, "ends": ends}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO leases (person_id, unit_id, starts, ends) VALUES ($1, $2, $3, $4)`, person, unit, starts, ends)
		return err
	})
}

// NewCredential is a credential to add; an empty Value for a QR code makes a random one.
type NewCredential struct {
	Kind       string     `json:"kind"`
	Value      string     `json:"value"`
	Duress     bool       `json:"duress"`
	ValidFrom  *time.Time `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until"`
}

// AddCredential adds a card, PIN, QR code or car plate to a person; it returns the credential's id and, for
// a generated QR code, its payload (shown once: only its hash is kept).
func (e *Engine) AddCredential(ctx context.Context, who auth.Actor, person string, c NewCredential) (int64, string, error) {
	switch c.Kind {
	case KindCard, KindQR:
	case KindPIN:
		if len(c.Value) < 4 || len(c.Value) > 12 {
			return 0, "", fmt.Errorf("%w: a PIN has 4 to 12 digits", ErrInvalid)
		}
	case KindPlate:
		c.Value = plate.Normalize(c.Value)
		if !plate.Valid(c.Value, "") {
			return 0, "", fmt.Errorf("%w: %q is not a plate (a province, a letter, then 5 or 6 letters and digits: 粤B12345)", ErrInvalid, c.Value)
		}
	default:
		return 0, "", fmt.Errorf("%w: credential kind must be card, pin, qr or plate (faces enrol through /v1/people/{id}/faces)", ErrInvalid)
	}
	if c.Kind == KindQR && c.Value == "" {
		var b [18]byte
		_, _ = rand.Read(b[:])
		c.Value = "VGLQR-" + base64.RawURLEncoding.EncodeToString(b[:])
	}
	if c.Value == "" || len(c.Value) > 256 {
		return 0, "", fmt.Errorf("%w: a credential needs a value of at most 256 characters", ErrInvalid)
	}
	if c.ValidFrom != nil && c.ValidUntil != nil && !c.ValidUntil.After(*c.ValidFrom) {
		return 0, "", fmt.Errorf("%w: valid_until must be after valid_from", ErrInvalid)
	}
	if old := SecretKey(c.Kind, c.Value); e.snapshot().creds[old] != nil { // one live credential per secret, old rows included
		return 0, "", fmt.Errorf("%w: this %s is already issued", ErrExists, c.Kind)
	}
	var id int64
	err := e.change(ctx, who, "credential.add", map[string]any{"person": person, "kind": c.Kind, "duress": c.Duress, "valid_from": c.ValidFrom, "valid_until": c.ValidUntil}, func(tx pgx.Tx) error {
		var err error
		id, err = e.insertCredential(ctx, tx, person, c)
		return err
	})
	if c.Kind != KindQR {
		return id, "", err
	}
	return id, c.Value, err
}

// insertCredential stores a credential in tx: its secret keyed (hmac) and sealed, never in the
// clear.
func (e *Engine) insertCredential(ctx context.Context, tx pgx.Tx, person string, c NewCredential) (int64, error) {
	h := e.secrets.hash(c.Kind, c.Value)
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO credentials (person_id, kind, secret_hash, hash_alg, secret_enc, duress, valid_from, valid_until)
		VALUES ($1, $2, $3, 'hmac', $4, $5, $6, $7) RETURNING id`, person, c.Kind, h[:], e.secrets.seal(c.Kind, c.Value), c.Duress, c.ValidFrom, c.ValidUntil).Scan(&id)
	return id, err
}

// RevokeCredential revokes one credential.
func (e *Engine) RevokeCredential(ctx context.Context, who auth.Actor, id int64, reason string) error {
	return e.change(ctx, who, "credential.revoke", map[string]any{"id": id, "reason": reason}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE credentials SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: no live credential %d", ErrInvalid, id)
		}
		return err
	})
}

// AddSchedule adds a weekly schedule (see ParseSchedule).
func (e *Engine) AddSchedule(ctx context.Context, who auth.Actor, id string, weekly, holidays json.RawMessage, tz string) error {
	if err := CheckID("schedule", id); err != nil {
		return err
	}
	if tz == "" {
		tz = "Asia/Shanghai"
	}
	if len(holidays) == 0 {
		holidays = json.RawMessage(`[]`)
	}
	if _, err := ParseSchedule(weekly, holidays, tz); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return e.change(ctx, who, "schedule.add", map[string]any{"id": id, "weekly": weekly, "holidays": holidays, "tz": tz}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO schedules (id, weekly, holidays, tz) VALUES ($1, $2, $3, $4)`, id, []byte(weekly), []byte(holidays), tz)
		return err
	})
}

// AddDoor registers a door and returns its controller's key (shown once).
func (e *Engine) AddDoor(ctx context.Context, who auth.Actor, d Door) ([]byte, error) {
	if err := CheckID("door", d.ID); err != nil {
		return nil, err
	}
	if d.Direction == "" {
		d.Direction = "in"
	}
	if d.FailMode == "" {
		d.FailMode = "secure"
	}
	if d.PulseMS <= 0 {
		d.PulseMS = 3000
	}
	if err := checkFacePolicy(d.FacePolicy); err != nil {
		return nil, err
	}
	if d.PlatePolicy == "" {
		d.PlatePolicy = PlateExact
	}
	if d.CameraOpens == "" {
		d.CameraOpens = CameraFaces
	}
	if d.CameraOpens != CameraFaces && d.CameraOpens != CameraPlates && d.CameraOpens != CameraBoth {
		return nil, fmt.Errorf("%w: camera_opens %q is not faces, plates or both", ErrInvalid, d.CameraOpens)
	}
	if err := checkPlatePolicy(d.PlatePolicy); err != nil {
		return nil, err
	}
	key := NewKey()
	err := e.change(ctx, who, "door.add", map[string]any{"id": d.ID, "camera": d.Camera, "area": d.Area, "direction": d.Direction,
		"anti_passback": d.AntiPassback, "fail_mode": d.FailMode, "face_policy": d.FacePolicy, "plate_policy": d.PlatePolicy, "camera_opens": d.CameraOpens}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO doors (id, name, camera, area, direction, anti_passback, fail_mode, pulse_ms, key, face_policy, plate_policy, camera_opens)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, d.ID, d.Name, d.Camera, d.Area, d.Direction, d.AntiPassback, d.FailMode, d.PulseMS, key, d.FacePolicy, d.PlatePolicy, d.CameraOpens)
		return err
	})
	return key, err
}

func checkFacePolicy(p string) error {
	if !slices.Contains(FacePolicies, p) {
		return fmt.Errorf("%w: face_policy %q is not one of \"\" (auto), face, face+credential, credential+face", ErrInvalid, p)
	}
	return nil
}

// SetFacePolicy changes what a face may do at a door (PolicyAuto, PolicyFace, PolicyTwoFactor,
// PolicyVerify).
func (e *Engine) SetFacePolicy(ctx context.Context, who auth.Actor, door, policy string) error {
	if err := checkFacePolicy(policy); err != nil {
		return err
	}
	return e.change(ctx, who, "door.face_policy", map[string]string{"door": door, "face_policy": policy}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE doors SET face_policy = $2 WHERE id = $1`, door, policy)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%w: no door %q", ErrInvalid, door)
		}
		return err
	})
}

// FaceRisk says what a door's face policy rests on now: the configured and effective policy, the
// door's gallery size and the estimated false-positive identification rate.
func (e *Engine) FaceRisk(door string) (FaceRisk, bool) {
	s := e.snapshot()
	if s.doors[door] == nil {
		return FaceRisk{}, false
	}
	return s.faceRisk(door), true
}

// AddRule lets everyone with a live lease in a unit (whoKind "unit"), one person ("person"),
// every person of a kind ("kind") or the members of a group ("group") open a door, within a
// schedule when one is named.
//
// factors is "" (any credential) or "card+pin" (a card with the same person's PIN).
func (e *Engine) AddRule(ctx context.Context, who auth.Actor, door, whoKind, whoID, schedule string, factors ...string) error {
	if !slices.Contains([]string{"unit", "person", "kind", "group"}, whoKind) || whoID == "" {
		return fmt.Errorf("%w: a rule names who (unit, person, kind or group) and an id", ErrInvalid)
	}
	f := ""
	if len(factors) > 0 {
		f = factors[0]
	}
	if f != "" && f != "card+pin" {
		return fmt.Errorf("%w: factors is empty (any credential) or card+pin", ErrInvalid)
	}
	var sched *string
	if schedule != "" {
		sched = &schedule
	}
	return e.change(ctx, who, "rule.add", map[string]any{"door": door, "who_kind": whoKind, "who": whoID, "schedule": schedule, "factors": f}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO rules (door_id, who_kind, who, schedule_id, factors) VALUES ($1, $2, $3, $4, $5)`, door, whoKind, whoID, sched, f)
		return err
	})
}

// AddGroup adds a group of people that rules can name.
func (e *Engine) AddGroup(ctx context.Context, who auth.Actor, id, name string) error {
	if err := CheckID("group", id); err != nil {
		return err
	}
	return e.change(ctx, who, "group.add", map[string]string{"id": id, "name": name}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO groups (id, name) VALUES ($1, $2)`, id, name)
		return err
	})
}

// AddGroupMember puts a person in a group.
func (e *Engine) AddGroupMember(ctx context.Context, who auth.Actor, group, person string) error {
	return e.change(ctx, who, "group.member.add", map[string]string{"group": group, "person": person}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO group_members (group_id, person_id) VALUES ($1, $2)`, group, person)
		return err
	})
}
