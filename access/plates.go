package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

// Plate policies: how a gate matches the plate its camera read against the plate credentials.
const (
	PlateExact = "exact"
	// PlateConfusable also takes a read one confusable character away from a registered plate
	// (0/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G…) when every character was read at PlateConfidence or
	// more and exactly one registered plate is that close. Never the province: 粤B12345 and
	// 湘B12345 are different cars.
	PlateConfusable = "confusable"
)

// What a door's camera opens it for.
const (
	CameraFaces  = "faces"
	CameraPlates = "plates" // a car park's barrier
	CameraBoth   = "both"
)

// GatesWithCamera lists the gates a camera's plates open (do not modify the slice).
func (e *Engine) GatesWithCamera(camera string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.snap.byPlateCam[camera]
}

// PlateConfidence is the least per-character confidence a read needs before the confusable
// policy looks past an exact match.
const PlateConfidence = 0.9

// MinPlateReads is how many reads of a passage must agree on the text before it opens a gate,
// unless one read is sure of every character (SurePlateRead): a gate camera analysed at a low
// rate may read a passing car once.
const MinPlateReads = 2

// SurePlateRead is the per-character confidence at which one read is enough.
const SurePlateRead = 0.95

// enoughReads reports whether a sighting was read often enough, or surely enough, to decide.
func (r PlateSighting) enoughReads() bool {
	return r.Reads >= MinPlateReads || r.Reads >= 1 && r.MinConf >= SurePlateRead
}

// confusables are the characters plate OCR mistakes for each other.
var confusables = map[rune][]rune{
	'0': {'D', 'Q', 'O'}, 'D': {'0', 'Q'}, 'Q': {'0', 'D'}, 'O': {'0'},
	'1': {'I', 'T'}, 'I': {'1'}, 'T': {'1'},
	'2': {'Z'}, 'Z': {'2'}, '5': {'S'}, 'S': {'5'}, '8': {'B'}, 'B': {'8'},
	'6': {'G'}, 'G': {'6'}, '4': {'A'}, 'A': {'4'}, '7': {'T'},
}

func checkPlatePolicy(p string) error {
	if p != PlateExact && p != PlateConfusable {
		return fmt.Errorf("%w: plate_policy %q is not exact or confusable", ErrInvalid, p)
	}
	return nil
}

// SetPlatePolicy changes how a gate matches the plates its camera reads.
func (e *Engine) SetPlatePolicy(ctx context.Context, who auth.Actor, door, policy string) error {
	if err := checkPlatePolicy(policy); err != nil {
		return err
	}
	return e.change(ctx, who, "door.plate_policy", map[string]string{"door": door, "plate_policy": policy}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE doors SET plate_policy = $2 WHERE id = $1`, door, policy)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: no door %q", ErrNotFound, door)
		}
		return err
	})
}

// PlateSighting is what a gate's camera read of a passing car.
type PlateSighting struct {
	Text    string  // normalised
	Color   string  // blue, green, yellow ("" unknown)
	MinConf float32 // the least confident character's confidence (0: unknown)
	Reads   int     // reads of this text in the passage
}

// decidePlate decides a plate read at a gate at now: the read must be a well-formed plate read
// often enough, then match a live plate credential under the gate's policy; the car's owner's
// rights decide the rest. It returns the verdict and the registered plate that matched.
func (s *snapshot) decidePlate(doorID string, r PlateSighting, now time.Time, inside Passback) (verdict, string) {
	door := s.doors[doorID]
	switch {
	case door == nil:
		return verdict{reason: DenyUnknownDoor}, ""
	case !plate.Valid(r.Text, r.Color):
		return verdict{reason: DenyPlateInvalid}, ""
	case !r.enoughReads():
		return verdict{reason: DenyPlateFewReads}, ""
	}
	person, _, why := s.credential(KindPlate, r.Text, now)
	matched := r.Text
	if why == DenyUnknown && door.PlatePolicy == PlateConfusable && r.MinConf >= PlateConfidence {
		var found []string
		for _, v := range confusableVariants(r.Text) {
			if s.held(KindPlate, v) != nil {
				found = append(found, v)
			}
		}
		switch len(found) {
		case 0:
		case 1:
			matched = found[0]
			person, _, why = s.credential(KindPlate, matched, now)
		default:
			return verdict{reason: DenyPlateAmbiguous}, ""
		}
	}
	if why != "" {
		return verdict{person: person, reason: why}, ""
	}
	reason, area := s.rights(doorID, person, false, now, inside, false)
	return verdict{person: person, reason: reason, area: area}, matched
}

// confusableVariants are the plates one confusable character away from text, the province kept.
func confusableVariants(text string) []string {
	rs := []rune(text)
	var out []string
	for i := 1; i < len(rs); i++ {
		orig := rs[i]
		for _, alt := range confusables[orig] {
			rs[i] = alt
			out = append(out, string(rs))
		}
		rs[i] = orig
	}
	return out
}

// GatePlate decides a car the pipeline read at a gate's camera and, when the rules allow, queues
// the barrier's unlock; a grant at a gate of a car park (its area) moves the car in or out.
// Same decision path and audit as every credential.
func (e *Engine) GatePlate(ctx context.Context, door string, r PlateSighting, eventID string, arrival time.Time) (Decision, error) {
	s := e.snapshot()
	now := e.now()
	v, matched := s.decidePlate(door, r, now, e.inside)
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	policy := ""
	if d := s.doors[door]; d != nil {
		policy = d.PlatePolicy
	}
	d, err := e.decide(ctx, door, s, v, map[string]any{"credential": "plate", "source": "camera", "event": eventID, "plate": r.Text,
		"matched": matched, "reads": r.Reads, "min_conf": r.MinConf, "policy": policy}, id)
	if err != nil || !d.Grant {
		return d, err
	}
	gate := s.doors[door]
	e.queue(gate, Command{ID: id, Door: door, Action: "unlock", PulseMS: d.PulseMS, PersonID: v.person, Reason: d.Reason,
		Event: eventID, Arrival: arrival, Issued: d.Time, Expires: d.Expires})
	if gate.Area != "" {
		if err := e.park(ctx, s, gate, matched, v.person, now); err != nil {
			return d, fmt.Errorf("access: the barrier opened, the car park's count did not move: %w", err)
		}
	}
	return d, nil
}

// park moves a car into or out of its gate's car park. A visitor's car is kept with the end of
// its window, for the overstay alarm.
func (e *Engine) park(ctx context.Context, s *snapshot, gate *Door, plateText, person string, now time.Time) error {
	if gate.Direction == "out" {
		_, err := e.pool.Exec(ctx, `DELETE FROM parked WHERE area = $1 AND plate = $2`, gate.Area, plateText)
		return err
	}
	var until *time.Time
	if c := s.held(KindPlate, plateText); c != nil && c.until != nil {
		until = c.until
	}
	_, err := e.pool.Exec(ctx, `INSERT INTO parked (area, plate, person_id, entered, until) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (area, plate) DO UPDATE SET person_id = $3, entered = $4, until = $5, alerted = false`, gate.Area, plateText, person, now, until)
	return err
}

// CarPark is a car park's occupancy.
type CarPark struct {
	Area        string `json:"area"`
	Cars        int    `json:"cars"`
	Visitors    int    `json:"visitors"`    // cars on a visitor's window
	Overstaying int    `json:"overstaying"` // visitors' cars past their window
}

// Parking lists every car park's occupancy (areas of gates with a plate camera), by area.
func (e *Engine) Parking(ctx context.Context) ([]CarPark, error) {
	rows, err := e.pool.Query(ctx, `SELECT a.area, count(p.plate), count(p.until), count(p.plate) FILTER (WHERE p.until < now())
		FROM (SELECT DISTINCT area FROM doors WHERE area <> '' AND camera <> '') a LEFT JOIN parked p ON p.area = a.area
		GROUP BY a.area ORDER BY a.area`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (CarPark, error) {
		var c CarPark
		return c, r.Scan(&c.Area, &c.Cars, &c.Visitors, &c.Overstaying)
	})
}

// WatchOverstays raises an overstay alarm, once, for every visitor's car still inside a car park
// past its window; it looks every interval until ctx ends. Every node may run it: the flag is
// set in the same statement that finds the car, so each car is raised once.
func (e *Engine) WatchOverstays(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rows, err := e.pool.Query(ctx, `UPDATE parked SET alerted = true WHERE until < now() AND NOT alerted RETURNING area, plate, person_id`)
		if err == nil {
			var area, plateText, person string
			_, err = pgx.ForEachRow(rows, []any{&area, &plateText, &person}, func() error {
				e.alarm(Alarm{Type: "overstay", Area: area, Plate: plateText, PersonID: person, Door: area, Time: e.now()})
				return nil
			})
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("overstay check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// FollowPlates connects the gates' plate cameras to their barriers: a plate event at a gate's
// camera is decided like any credential (GatePlate). One decision per plate and gate within 10 s.
// mine, when not nil, says which cameras' events this node decides.
func (e *Engine) FollowPlates(ctx context.Context, sub Subscriber, log *slog.Logger, mine func(camera string) bool) (stop func(), err error) {
	log = log.With("component", "gates")
	recent := newRecently(10 * time.Second)
	return sub.Subscribe(event.SubjectPrefix+"."+event.KindPlate+".>", func(_ string, data []byte) {
		ev, err := event.Unpack(data)
		if err != nil || ev.Plate == nil || ev.Plate.Text == "" {
			return
		}
		doors := e.GatesWithCamera(ev.Camera)
		if len(doors) == 0 || mine != nil && !mine(ev.Camera) {
			return
		}
		r := PlateSighting{Text: plate.Normalize(ev.Plate.Text), Color: ev.Plate.Color, Reads: ev.Plate.Votes}
		if r.Reads == 0 {
			r.Reads = ev.Frames
		}
		if len(ev.Plate.Chars) > 0 {
			r.MinConf = 1
			for _, c := range ev.Plate.Chars {
				r.MinConf = min(r.MinConf, c.Conf)
			}
		}
		// A read that is not a plate, or read once unsurely, is noise, not a car at the barrier:
		// it is not decided (nor audited), and a later event of the same passage still is.
		if !plate.Valid(r.Text, r.Color) || !r.enoughReads() {
			return
		}
		for _, door := range doors {
			if !recent.first(door, r.Text) {
				continue
			}
			d, err := e.GatePlate(ctx, door, r, ev.ID, ev.Arrival)
			if err != nil {
				log.Error("gate decision failed", "door", door, "err", err)
				continue
			}
			log.Info("gate decision from its camera", "door", door, "plate", r.Text, "grant", d.Grant, "reason", d.Reason)
		}
	})
}
