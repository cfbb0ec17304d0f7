package footage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/streams"
)

// PGIndex keeps the segments index in PostgreSQL (table segments, migration 002).
type PGIndex struct {
	Pool *pgxpool.Pool
}

// AddSegment records a segment; recording the same segment twice is harmless. A segment whose
// lease epoch is older than the camera's fence is refused with ErrFenced: another node holds
// the camera now.
func (p PGIndex) AddSegment(ctx context.Context, s Segment) error {
	tag, err := p.Pool.Exec(ctx, `INSERT INTO segments (camera, start_time, end_time, blob_key, bytes, codec, lease)
		SELECT $1, $2, $3, $4, $5, $6, $7::bigint
		WHERE $7::bigint = 0 OR NOT EXISTS (SELECT 1 FROM camera_fences WHERE camera = $1::text AND epoch > $7::bigint)
		ON CONFLICT (camera, start_time) DO UPDATE SET end_time = EXCLUDED.end_time, blob_key = EXCLUDED.blob_key,
			bytes = EXCLUDED.bytes, codec = EXCLUDED.codec, lease = EXCLUDED.lease
		WHERE segments.lease < EXCLUDED.lease`,
		s.Camera, s.Start, s.End, s.Key, s.Bytes, string(s.Codec), int64(s.Lease))
	if err == nil && tag.RowsAffected() == 0 && s.Lease > 0 && p.fenced(ctx, s) {
		return fmt.Errorf("%w: %s epoch %d", ErrFenced, s.Camera, s.Lease)
	}
	return err
}

// fenced reports whether the camera's fence is past the segment's epoch.
func (p PGIndex) fenced(ctx context.Context, s Segment) bool {
	var epoch int64
	err := p.Pool.QueryRow(ctx, `SELECT epoch FROM camera_fences WHERE camera = $1`, s.Camera).Scan(&epoch)
	return err == nil && epoch > int64(s.Lease)
}

// ErrFenced means a write came from a node that no longer holds the camera's lease.
var ErrFenced = errors.New("footage: fenced: another node holds the camera")

// Fence takes a camera for node: it bumps the camera's epoch and returns it. The node's segments
// and events carry the epoch; writes with an older one are refused from now on.
func Fence(ctx context.Context, pool *pgxpool.Pool, camera, node string) (uint64, error) {
	var epoch int64
	err := pool.QueryRow(ctx, `INSERT INTO camera_fences (camera, epoch, node) VALUES ($1, 1, $2)
		ON CONFLICT (camera) DO UPDATE SET epoch = camera_fences.epoch + 1, node = $2, at = now() RETURNING epoch`,
		camera, node).Scan(&epoch)
	return uint64(epoch), err
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

// Usage is what a camera's recording holds: its segments, their bytes, and the end of the last.
type Usage struct {
	Segments int64     `json:"segments"`
	Bytes    int64     `json:"bytes"`
	Last     time.Time `json:"last_segment_end"`
}

// Usage sums every camera's segments (one pass over the index: callers cache it).
func (p PGIndex) Usage(ctx context.Context) (map[string]Usage, error) {
	rows, err := p.Pool.Query(ctx, `SELECT camera, count(*), coalesce(sum(bytes), 0), max(end_time) FROM segments GROUP BY camera`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Usage{}
	for rows.Next() {
		var c string
		var u Usage
		if err := rows.Scan(&c, &u.Segments, &u.Bytes, &u.Last); err != nil {
			return nil, err
		}
		out[c] = u
	}
	return out, rows.Err()
}
