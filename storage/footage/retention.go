package footage

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/storage/blob"
)

// Policy bounds one camera's footage: by age and by total size (0: no bound).
type Policy struct {
	Days     int
	MaxBytes int64
}

// Deleter removes blobs.
type Deleter interface {
	Delete(ctx context.Context, key string) error
}

// Retain deletes the camera's segments older than the policy's days, then the oldest ones until
// its footage fits MaxBytes. Blobs go first, then their index rows, so a crash in between leaves
// an index row whose clip is skipped, never an orphaned blob nobody can find. It returns how
// many segments and bytes it deleted.
func (p PGIndex) Retain(ctx context.Context, blobs Deleter, camera string, pol Policy, now time.Time) (int, int64, error) {
	var victims []Segment
	if pol.Days > 0 {
		rows, err := p.Pool.Query(ctx, `SELECT blob_key, bytes, start_time FROM segments WHERE camera = $1 AND end_time < $2 ORDER BY start_time`,
			camera, now.AddDate(0, 0, -pol.Days))
		if err != nil {
			return 0, 0, err
		}
		old, err := pgx.CollectRows(rows, scanVictim)
		if err != nil {
			return 0, 0, err
		}
		victims = append(victims, old...)
	}
	if pol.MaxBytes > 0 {
		var total int64
		if err := p.Pool.QueryRow(ctx, `SELECT coalesce(sum(bytes), 0) FROM segments WHERE camera = $1`, camera).Scan(&total); err != nil {
			return 0, 0, err
		}
		for _, v := range victims {
			total -= v.Bytes
		}
		if total > pol.MaxBytes {
			rows, err := p.Pool.Query(ctx, `SELECT blob_key, bytes, start_time FROM segments WHERE camera = $1 ORDER BY start_time LIMIT 100000`, camera)
			if err != nil {
				return 0, 0, err
			}
			all, err := pgx.CollectRows(rows, scanVictim)
			if err != nil {
				return 0, 0, err
			}
			seen := map[string]bool{}
			for _, v := range victims {
				seen[v.Key] = true
			}
			for _, v := range all {
				if total <= pol.MaxBytes {
					break
				}
				if !seen[v.Key] {
					victims = append(victims, v)
					total -= v.Bytes
				}
			}
		}
	}
	var n int
	var freed int64
	for _, v := range victims {
		if err := blobs.Delete(ctx, v.Key); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return n, freed, err
		}
		if _, err := p.Pool.Exec(ctx, `DELETE FROM segments WHERE camera = $1 AND start_time = $2`, camera, v.Start); err != nil {
			return n, freed, err
		}
		n++
		freed += v.Bytes
	}
	return n, freed, nil
}

func scanVictim(r pgx.CollectableRow) (Segment, error) {
	var s Segment
	err := r.Scan(&s.Key, &s.Bytes, &s.Start)
	return s, err
}
