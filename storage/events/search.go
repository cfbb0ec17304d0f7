package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// ErrOtherModel means a stored face was described by another model than the index's: the two
// are never compared.
var ErrOtherModel = errors.New("events: face of another model")

// Embedding returns a stored face event's embedding.
func (s *Store) Embedding(ctx context.Context, id string) ([]float32, error) {
	t, ok := TimeOfID(id)
	if !ok {
		return nil, ErrNotFound
	}
	var b []byte
	var model string
	err := s.pool.QueryRow(ctx, `SELECT embedding, model FROM faces WHERE event_id = $1 AND time >= $2 AND time < $3`,
		id, t.Add(-time.Second), t.Add(time.Second)).Scan(&b, &model)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if model != s.faceModel {
		return nil, fmt.Errorf("%w: event %s's face was described by the %s model and the search index holds %s faces",
			ErrOtherModel, id, model, s.faceModel)
	}
	return EmbeddingFromBytes(b), nil
}

// FaceDays counts stored face embeddings per day since from, oldest first: what a rebuild of the
// vector index will load, so it can size each day's arrays once.
func (s *Store) FaceDays(ctx context.Context, from time.Time) (map[time.Time]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT date_trunc('day', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count(*) FROM faces WHERE time >= $1 AND model = $2 GROUP BY 1`, from, s.faceModel)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[time.Time]int{}
	for rows.Next() {
		var d time.Time
		var n int
		if err := rows.Scan(&d, &n); err != nil {
			return nil, err
		}
		out[d.UTC()] = n
	}
	return out, rows.Err()
}

// ScanFaces streams every face embedding since from to fn, in time order within each day.
func (s *Store) ScanFaces(ctx context.Context, from time.Time, fn func(id string, t time.Time, camera string, emb []float32) error) error {
	return s.ScanFacesBetween(ctx, from, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), fn)
}

// ScanFacesBetween streams the face embeddings in [from, to) to fn (a day the vector index has
// no snapshot of). Every embedding is the store's face model's, whatever its length.
func (s *Store) ScanFacesBetween(ctx context.Context, from, to time.Time, fn func(id string, t time.Time, camera string, emb []float32) error) error {
	rows, err := s.pool.Query(ctx, `SELECT event_id, time, camera, embedding FROM faces WHERE time >= $1 AND time < $2 AND model = $3`, from, to, s.faceModel)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id, camera string
	var t time.Time
	var b []byte
	var emb []float32
	for rows.Next() {
		if err := rows.Scan(&id, &t, &camera, &b); err != nil {
			return err
		}
		if len(b) == 0 || len(b)%4 != 0 {
			continue
		}
		if cap(emb) < len(b)/4 {
			emb = make([]float32, len(b)/4)
		}
		emb = emb[:len(b)/4]
		event.UnpackVector(b, emb)
		if err := fn(id, t, camera, emb); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PlateCounts streams each distinct plate read since from, with its count and last sighting.
func (s *Store) PlateCounts(ctx context.Context, from time.Time, fn func(plate string, reads int, last time.Time)) error {
	rows, err := s.pool.Query(ctx, `SELECT plate, count(*), max(time) FROM events WHERE plate IS NOT NULL AND time >= $1 GROUP BY plate`, from)
	if err != nil {
		return err
	}
	defer rows.Close()
	var plate string
	var n int
	var last time.Time
	for rows.Next() {
		if err := rows.Scan(&plate, &n, &last); err != nil {
			return err
		}
		fn(plate, n, last)
	}
	return rows.Err()
}

// PlateEvents returns, for each plate, its newest events in [from, to) (at most perPlate each,
// newest first), in one round trip: each plate is a walk down the plate + time index. camera,
// when set, keeps only that camera's reads.
func (s *Store) PlateEvents(ctx context.Context, plates []string, from, to time.Time, camera string, perPlate int) (map[string][]Event, error) {
	out := map[string][]Event{}
	if len(plates) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+qualified("e")+`
		FROM unnest($1::text[]) AS p(plate)
		CROSS JOIN LATERAL (SELECT * FROM events WHERE events.plate = p.plate AND time >= $2 AND time < $3
			AND ($4 = '' OR camera = $4) ORDER BY time DESC LIMIT $5) e`,
		plates, from, to, camera, perPlate)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, err
	}
	for _, e := range list {
		out[*e.Plate] = append(out[*e.Plate], e)
	}
	return out, nil
}

// ErasePerson deletes every face event matched to person, with their embeddings; it returns the
// events' ids and snapshot keys so the caller can drop them from the vector index and the blob store.
func (s *Store) ErasePerson(ctx context.Context, person string) (ids, snapshots []string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM events WHERE person_id = $1 AND kind = 'face' RETURNING id, time, snapshot`, person)
		if err != nil {
			return err
		}
		var times []time.Time
		for rows.Next() {
			var id string
			var t time.Time
			var snap *string
			if err := rows.Scan(&id, &t, &snap); err != nil {
				return err
			}
			ids, times = append(ids, id), append(times, t)
			if snap != nil {
				snapshots = append(snapshots, *snap)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM faces f USING unnest($1::text[], $2::timestamptz[]) AS x(id, t) WHERE f.event_id = x.id AND f.time = x.t`, ids, times)
		return err
	})
	return ids, snapshots, err
}
