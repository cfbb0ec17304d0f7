package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
)

// Sensor kinds: what a site's fire panel, sprinklers, door contacts and panic buttons report.
var SensorKinds = []string{"fire", "smoke", "sprinkler", "door_forced", "door_held", "panic"}

// Sensor reports: an alarm raises an alert, clear ends it, heartbeat says the sensor is alive.
const (
	ReportAlarm     = "alarm"
	ReportClear     = "clear"
	ReportHeartbeat = "heartbeat"
)

// Sensor states.
const (
	StateOK      = "ok"
	StateAlarm   = "alarm"
	StateOffline = "offline"
)

// HeartbeatMisses is how many heartbeats in a row a sensor may miss before it is shown offline.
const HeartbeatMisses = 3

var sensorID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Sensor is one registered sensor, its state and its place on the site map.
type Sensor struct {
	ID         string      `json:"id"`
	Kind       string      `json:"kind"`
	Name       string      `json:"name,omitempty"`
	Cameras    []string    `json:"cameras"`
	HeartbeatS int         `json:"heartbeat_s"`
	State      string      `json:"state"`
	AlarmEvent string      `json:"alarm_event,omitempty"`
	Since      time.Time   `json:"since"`
	LastSeen   *time.Time  `json:"last_seen,omitempty"`
	Map        *[2]float64 `json:"map,omitempty"`
}

// SensorSpec is what registering a sensor sets.
type SensorSpec struct {
	ID         string      `json:"id"`
	Kind       string      `json:"kind"`
	Name       string      `json:"name"`
	Cameras    []string    `json:"cameras"`
	HeartbeatS *int        `json:"heartbeat_s"` // default 60; 0: the sensor sends none
	Map        *[2]float64 `json:"map"`         // [x, y] in fractions of the site plan
	RotateKey  bool        `json:"rotate_key"`  // a new webhook key for a sensor already registered
}

// SensorAlarm is a sensor's alarm (or its going offline) for the node to raise as an event.
type SensorAlarm struct {
	Sensor  Sensor
	Type    string // the sensor's kind, or sensor_offline
	EventID string
	Time    time.Time
	Value   json.RawMessage // what the sensor sent with it (a zone, a reading), bounded
}

// OnSensorAlarm sets what raises a sensor's alarm as an event (the node puts it on the bus).
func (s *Service) OnSensorAlarm(fn func(SensorAlarm)) {
	s.mu.Lock()
	s.onAlarm = fn
	s.mu.Unlock()
}

func (s *Service) raise(a SensorAlarm) {
	s.mu.Lock()
	fn := s.onAlarm
	s.mu.Unlock()
	if fn != nil {
		fn(a)
	}
	s.publish(Update{Type: "sensor", Sensor: &a.Sensor})
}

const sensorCols = `s.id, s.kind, s.name, s.cameras, s.heartbeat_s, s.state, coalesce(s.alarm_event, ''), s.since, s.last_seen`

func scanSensor(row pgx.Row) (Sensor, error) {
	var sn Sensor
	err := row.Scan(&sn.ID, &sn.Kind, &sn.Name, &sn.Cameras, &sn.HeartbeatS, &sn.State, &sn.AlarmEvent, &sn.Since, &sn.LastSeen)
	return sn, err
}

// RegisterSensor adds a sensor or changes one, audited. A new sensor (or RotateKey) gets a new
// 32-byte webhook key, returned only here; otherwise key is nil.
func (s *Service) RegisterSensor(ctx context.Context, who auth.Actor, spec SensorSpec) (sn Sensor, key []byte, err error) {
	if !sensorID.MatchString(spec.ID) {
		return sn, nil, fmt.Errorf("%w: a sensor id is 1 to 64 letters, digits, - and _", ErrInvalid)
	}
	if !slices.Contains(SensorKinds, spec.Kind) {
		return sn, nil, fmt.Errorf("%w: kind is one of %v", ErrInvalid, SensorKinds)
	}
	if len(spec.Name) > 200 || len(spec.Cameras) > 8 {
		return sn, nil, fmt.Errorf("%w: a name of at most 200 characters and at most 8 linked cameras", ErrInvalid)
	}
	for _, c := range spec.Cameras {
		if c == "" || len(c) > 128 {
			return sn, nil, fmt.Errorf("%w: a linked camera's id is 1 to 128 characters", ErrInvalid)
		}
	}
	hb := 60
	if spec.HeartbeatS != nil {
		hb = *spec.HeartbeatS
	}
	if hb < 0 || hb > 86400 {
		return sn, nil, fmt.Errorf("%w: heartbeat_s is 0 (none) to 86400", ErrInvalid)
	}
	if m := spec.Map; m != nil && (m[0] < 0 || m[0] > 1 || m[1] < 0 || m[1] > 1) {
		return sn, nil, fmt.Errorf("%w: map is [x, y] in fractions of the plan (0 to 1)", ErrInvalid)
	}
	cams := spec.Cameras
	if cams == nil {
		cams = []string{}
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	detail := map[string]any{"sensor": spec.ID, "kind": spec.Kind, "cameras": cams, "heartbeat_s": hb}
	err = s.change(ctx, who, "sensor.register", "", detail, func(tx pgx.Tx) error {
		var created bool
		if err := tx.QueryRow(ctx, `INSERT INTO sensors AS s (id, kind, name, cameras, key, heartbeat_s, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO UPDATE SET kind = $2, name = $3, cameras = $4, heartbeat_s = $6,
				key = CASE WHEN $8 THEN $5 ELSE s.key END
			RETURNING (xmax = 0)`, spec.ID, spec.Kind, spec.Name, cams, fresh, hb, who.Name, spec.RotateKey).Scan(&created); err != nil {
			return err
		}
		if created || spec.RotateKey {
			key = fresh
			detail["new_key"] = true
		}
		if spec.Map != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO map_items (kind, id, x, y) VALUES ('sensor', $1, $2, $3)
				ON CONFLICT (kind, id) DO UPDATE SET x = $2, y = $3`, spec.ID, spec.Map[0], spec.Map[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sn, nil, err
	}
	sn, err = s.Sensor(ctx, spec.ID)
	s.publish(Update{Type: "map"})
	return sn, key, err
}

// Sensors lists every sensor with its state and map position.
func (s *Service) Sensors(ctx context.Context) ([]Sensor, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sensorCols+`, m.x, m.y FROM sensors s
		LEFT JOIN map_items m ON m.kind = 'sensor' AND m.id = s.id ORDER BY s.id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Sensor, error) {
		var sn Sensor
		var x, y *float64
		err := row.Scan(&sn.ID, &sn.Kind, &sn.Name, &sn.Cameras, &sn.HeartbeatS, &sn.State, &sn.AlarmEvent, &sn.Since, &sn.LastSeen, &x, &y)
		if x != nil && y != nil {
			sn.Map = &[2]float64{*x, *y}
		}
		return sn, err
	})
}

// Sensor returns one sensor, or ErrNotFound.
func (s *Service) Sensor(ctx context.Context, id string) (Sensor, error) {
	all, err := s.Sensors(ctx) // a site has hundreds, not millions; one query shape
	if err != nil {
		return Sensor{}, err
	}
	for _, sn := range all {
		if sn.ID == id {
			return sn, nil
		}
	}
	return Sensor{}, ErrNotFound
}

// SensorKey is a sensor's webhook key, or ErrNotFound.
func (s *Service) SensorKey(ctx context.Context, id string) ([]byte, error) {
	var key []byte
	err := s.pool.QueryRow(ctx, `SELECT key FROM sensors WHERE id = $1`, id).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return key, err
}

// RemoveSensor deletes a sensor and its place on the map, audited.
func (s *Service) RemoveSensor(ctx context.Context, who auth.Actor, id string) error {
	err := s.change(ctx, who, "sensor.remove", "", map[string]any{"sensor": id}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sensors WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM map_items WHERE kind = 'sensor' AND id = $1`, id)
		}
		return err
	})
	if err == nil {
		s.publish(Update{Type: "map"})
	}
	return err
}

// Report takes one report from a sensor (over MQTT or the webhook). An alarm raises an alarm
// event only when the sensor was not already in alarm (a panel repeating its alarm raises one);
// clear ends the alarm; every report counts as a heartbeat, and brings an offline sensor back.
// newID makes the alarm event's id (event.NewID). Unknown sensors are ErrNotFound.
func (s *Service) Report(ctx context.Context, id, report string, value json.RawMessage, at time.Time, newID func(time.Time) string) (Sensor, error) {
	if len(value) > 1024 {
		value = nil // a reading is a zone or a number: a kilobyte is plenty, more is dropped
	}
	var sn Sensor
	var err error
	switch report {
	case ReportAlarm:
		evID := newID(at)
		sn, err = scanSensor(s.pool.QueryRow(ctx, `UPDATE sensors s SET state = 'alarm', since = now(), last_seen = now(), alarm_event = $2
			WHERE id = $1 AND state <> 'alarm' RETURNING `+sensorCols, id, evID))
		if err == nil {
			sn.Map, _ = s.itemAt(ctx, "sensor", id)
			s.raise(SensorAlarm{Sensor: sn, Type: sn.Kind, EventID: evID, Time: at, Value: value})
			return sn, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return sn, err
		}
		return s.seen(ctx, id) // already in alarm: one alert per alarm
	case ReportClear:
		sn, err = scanSensor(s.pool.QueryRow(ctx, `UPDATE sensors s SET state = 'ok', since = now(), last_seen = now(), alarm_event = NULL
			WHERE id = $1 AND state <> 'ok' RETURNING `+sensorCols, id))
		if err == nil {
			s.publish(Update{Type: "sensor", Sensor: &sn})
			return sn, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return sn, err
		}
		return s.seen(ctx, id)
	case ReportHeartbeat:
		return s.seen(ctx, id)
	}
	return sn, fmt.Errorf("%w: a sensor reports alarm, clear or heartbeat, not %q", ErrInvalid, report)
}

// seen records a report; an offline sensor comes back (to alarm if it went offline in one).
func (s *Service) seen(ctx context.Context, id string) (Sensor, error) {
	sn, err := scanSensor(s.pool.QueryRow(ctx, `UPDATE sensors s SET last_seen = now(),
			state = CASE WHEN state = 'offline' THEN (CASE WHEN alarm_event IS NULL THEN 'ok' ELSE 'alarm' END) ELSE state END,
			since = CASE WHEN state = 'offline' THEN now() ELSE since END
		WHERE id = $1 RETURNING `+sensorCols, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return sn, ErrNotFound
	}
	return sn, err
}

// CheckHeartbeats marks offline every sensor that missed HeartbeatMisses heartbeats and raises
// a sensor_offline alarm for each, once: several nodes may run it, the update decides which
// raises.
func (s *Service) CheckHeartbeats(ctx context.Context, newID func(time.Time) string) (int, error) {
	rows, err := s.pool.Query(ctx, `UPDATE sensors s SET state = 'offline', since = now()
		WHERE heartbeat_s > 0 AND state <> 'offline'
		  AND coalesce(last_seen, created_at) < now() - make_interval(secs => heartbeat_s * $1)
		RETURNING `+sensorCols, HeartbeatMisses)
	if err != nil {
		return 0, err
	}
	gone, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Sensor, error) { return scanSensor(row) })
	if err != nil {
		return 0, err
	}
	now := time.Now()
	for _, sn := range gone {
		sn.Map, _ = s.itemAt(ctx, "sensor", sn.ID)
		s.raise(SensorAlarm{Sensor: sn, Type: "sensor_offline", EventID: newID(now), Time: now})
	}
	return len(gone), nil
}

// itemAt is where an item sits on the site map (nil: not placed).
func (s *Service) itemAt(ctx context.Context, kind, id string) (*[2]float64, error) {
	var p [2]float64
	err := s.pool.QueryRow(ctx, `SELECT x, y FROM map_items WHERE kind = $1 AND id = $2`, kind, id).Scan(&p[0], &p[1])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}
