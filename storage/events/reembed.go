package events

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// StoredFace is a face event whose embedding was made by another model than the one wanted,
// with the key of its best shot (what it is described again from).
type StoredFace struct {
	ID       string
	Time     time.Time
	Model    string
	Snapshot string // blob key; "" when the event kept none
}

// FacesOfOtherModels lists, oldest first and at most limit, the stored face events after the
// one at (afterTime, afterID) whose embedding is not sp's (a zero afterTime starts at from).
func (s *Store) FacesOfOtherModels(ctx context.Context, sp space.Space, from, afterTime time.Time, afterID string, limit int) ([]StoredFace, error) {
	if afterTime.Before(from) {
		afterTime, afterID = from, ""
	}
	rows, _ := s.pool.Query(ctx, `SELECT f.event_id, f.time, f.model, coalesce(e.snapshot, '')
		FROM faces f LEFT JOIN events e ON e.time = f.time AND e.id = f.event_id
		WHERE f.time >= $1 AND (f.time, f.event_id) > ($1, $2) AND f.model <> $3
		ORDER BY f.time, f.event_id LIMIT $4`, afterTime, afterID, sp.Name, limit)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredFace, error) {
		var f StoredFace
		return f, r.Scan(&f.ID, &f.Time, &f.Model, &f.Snapshot)
	})
}

// ReplaceEmbedding stores emb, in sp, as the face of event id (at t) in place of the old model's.
func (s *Store) ReplaceEmbedding(ctx context.Context, id string, t time.Time, sp space.Space, emb []float32) error {
	if err := sp.Check(emb); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE faces SET embedding = $3, model = $4 WHERE time = $1 AND event_id = $2`, t, id, event.PackVector(emb), sp.Name)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("%w: face event %s", ErrNotFound, id)
	}
	return err
}
