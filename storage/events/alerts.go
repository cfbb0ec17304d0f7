package events

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// QuietLists are the lists whose matches open doors, not alerts: the gallery's residents enrolled
// by hand (vigil enroll's default) and access.AccessList, which follows the access-control
// templates. The API's redaction and the console's alert feed go by the same.
var QuietLists = []string{"residents", "access"}

// Alert is an alert as the history shows it: the event, and who acknowledged it and when (from
// the dispatch service's alert_acks, migration 007, in the same database).
type Alert struct {
	Event
	AckedBy string     `json:"acked_by,omitempty"`
	AckedAt *time.Time `json:"acked_at,omitempty"`
	AckNote string     `json:"ack_note,omitempty"`
}

// AlertFilter selects alerts: State is "open" (not acknowledged), "acknowledged" or "all".
type AlertFilter struct {
	State    string
	From, To time.Time
	Limit    int
	Cursor   string
}

// Alerts returns alerts newest first, and a cursor for the next page ("" at the end): face
// matches on a list that is not a quiet one, listed plates, and alarms (a duress code at a door,
// a camera gone offline, a recording stopped).
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]Alert, string, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	where := []string{"e.time >= $1", "e.time < $2", "(e.kind = 'alarm' OR (e.list IS NOT NULL AND NOT e.list = ANY($3)))"}
	args := []any{f.From, f.To, QuietLists}
	switch f.State {
	case "", "all":
	case "open":
		where = append(where, "a.event_id IS NULL")
	case "acknowledged":
		where = append(where, "a.event_id IS NOT NULL")
	default:
		return nil, "", fmt.Errorf("events: alert state %q: open, acknowledged or all", f.State)
	}
	if f.Cursor != "" {
		c, err := parseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		args = append(args, c.T, c.ID)
		where = append(where, fmt.Sprintf("(e.time, e.id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	args = append(args, f.Limit+1)
	sql := `SELECT ` + qualified("e") + `, coalesce(a.acked_by, ''), a.acked_at, coalesce(a.note, '')
		FROM events e LEFT JOIN alert_acks a ON a.event_id = e.id
		WHERE ` + strings.Join(where, " AND ") + fmt.Sprintf(` ORDER BY e.time DESC, e.id DESC LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Alert, error) {
		var a Alert
		e := &a.Event
		err := row.Scan(&e.ID, &e.Time, &e.First, &e.Camera, &e.Kind, &e.Track, &e.Frames, &e.PersonID, &e.PersonName,
			&e.List, &e.Distance, &e.Plate, &e.PlateColor, &e.Quality, &e.Liveness, &e.BBox, &e.Snapshot, &e.Attrs,
			&a.AckedBy, &a.AckedAt, &a.AckNote)
		return a, err
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pageOf(out, f.Limit, func(a Alert) cursor { return cursor{T: a.Time, ID: a.ID} })
	return out, next, nil
}

// parseCursor reads a page cursor this store made.
func parseCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.ID == "" {
		return c, ErrBadCursor
	}
	return c, nil
}

// pageOf cuts rows (fetched one past limit) to limit and makes the next page's cursor from the
// last row kept ("" when there is no next page).
func pageOf[T any](rows []T, limit int, at func(T) cursor) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	b, _ := json.Marshal(at(rows[len(rows)-1]))
	return rows, base64.RawURLEncoding.EncodeToString(b)
}

// qualified is selectColumns with each column qualified by a table alias.
func qualified(alias string) string {
	cols := strings.Split(selectColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
