package events

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Export is a case file's record: which events, people and plates it holds.
type Export struct {
	ID             string    `json:"id"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by"`
	Reason         string    `json:"reason"`
	EventIDs       []string  `json:"event_ids"`
	PersonIDs      []string  `json:"person_ids,omitempty"`
	Plates         []string  `json:"plates,omitempty"`
	ManifestSHA256 string    `json:"manifest_sha256"`
}

// InsertExport records a case file in tx (the transaction that audits it).
func (s *Store) InsertExport(ctx context.Context, tx pgx.Tx, x Export) error {
	if x.EventIDs == nil {
		x.EventIDs = []string{} // footage ranges only
	}
	if x.PersonIDs == nil {
		x.PersonIDs = []string{}
	}
	if x.Plates == nil {
		x.Plates = []string{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO exports (id, created_at, created_by, reason, event_ids, person_ids, plates, manifest_sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, x.ID, x.CreatedAt, x.CreatedBy, x.Reason, x.EventIDs, x.PersonIDs, x.Plates, x.ManifestSHA256)
	return err
}

// ExportsWith lists the case files that hold a person's events, newest first.
func (s *Store) ExportsWith(ctx context.Context, person string) ([]Export, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, created_at, created_by, reason, event_ids, person_ids, plates, manifest_sha256
		FROM exports WHERE $1 = ANY(person_ids) ORDER BY created_at DESC`, person)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Export])
}

// Identity is whom an event was matched to when it happened.
type Identity struct {
	PersonID string `json:"person_id"`
	Name     string `json:"person_name,omitempty"`
}

// IdentitiesOf gives, for each of the given events that matched a person, whom (for a face
// search: the names shown with its hits, and its audit row, so that "who searched for this
// person" finds searches by photo too). from and to bound the events' times, so that only their
// partitions are read.
func (s *Store) IdentitiesOf(ctx context.Context, ids []string, from, to time.Time) (map[string]Identity, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, person_id, coalesce(person_name, '') FROM events
		WHERE id = ANY($1) AND time >= $2 AND time <= $3 AND person_id IS NOT NULL`, ids, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Identity{}
	for rows.Next() {
		var id string
		var who Identity
		if err := rows.Scan(&id, &who.PersonID, &who.Name); err != nil {
			return nil, err
		}
		out[id] = who
	}
	return out, rows.Err()
}
