package footage

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/streams"
)

// PGIndex keeps the segments index in PostgreSQL (table segments, migration 002).
type PGIndex struct {
	Pool *pgxpool.Pool
}

// AddSegment records a segment; recording the same segment twice is harmless.
func (p PGIndex) AddSegment(ctx context.Context, s Segment) error {
	_, err := p.Pool.Exec(ctx, `INSERT INTO segments (camera, start_time, end_time, blob_key, bytes, codec)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (camera, start_time) DO NOTHING`,
		s.Camera, s.Start, s.End, s.Key, s.Bytes, string(s.Codec))
	return err
}

// Segments returns the camera's segments overlapping [from, to], oldest first.
func (p PGIndex) Segments(ctx context.Context, camera string, from, to time.Time) ([]Segment, error) {
	rows, err := p.Pool.Query(ctx, `SELECT camera, start_time, end_time, blob_key, bytes, codec FROM segments
		WHERE camera = $1 AND start_time < $3 AND end_time > $2 ORDER BY start_time`, camera, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Segment, error) {
		var s Segment
		var codec string
		err := r.Scan(&s.Camera, &s.Start, &s.End, &s.Key, &s.Bytes, &codec)
		s.Codec = streams.Codec(codec)
		return s, err
	})
}
