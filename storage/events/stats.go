package events

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// HourCount is one camera's events in one hour.
type HourCount struct {
	Camera     string    `json:"camera"`
	Hour       time.Time `json:"hour"`
	Events     int       `json:"events"`
	Recognised int       `json:"recognised"` // matched a person or a listed plate
}

// ListCount is how many events of a kind matched a list ("" for none).
type ListCount struct {
	Kind  string `json:"kind"`
	List  string `json:"list"`
	Count int    `json:"count"`
}

// Stats counts the events since from: per camera and hour, and per kind and list (the console's
// charts). It reads the day partitions the window touches through the time index.
func (s *Store) Stats(ctx context.Context, from time.Time) ([]HourCount, []ListCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT camera, date_trunc('hour', time) AS h, count(*), count(*) FILTER (WHERE list IS NOT NULL)
		FROM events WHERE time >= $1 GROUP BY camera, h ORDER BY h, camera`, from)
	if err != nil {
		return nil, nil, err
	}
	hours, err := pgx.CollectRows(rows, pgx.RowToStructByPos[HourCount])
	if err != nil {
		return nil, nil, err
	}
	rows, err = s.pool.Query(ctx, `SELECT kind, coalesce(list, ''), count(*) FROM events WHERE time >= $1 GROUP BY 1, 2 ORDER BY 1, 2`, from)
	if err != nil {
		return nil, nil, err
	}
	lists, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ListCount])
	return hours, lists, err
}
