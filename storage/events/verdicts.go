package events

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// Verdicts an operator gives a match.
const (
	VerdictCorrect = "correct"
	VerdictWrong   = "wrong"
	VerdictThisIs  = "this_is"
)

// Verdict is an operator's verdict on one event's match.
type Verdict struct {
	ID        int64     `json:"id"`
	EventID   string    `json:"event_id"`
	EventTime time.Time `json:"event_time"`
	Camera    string    `json:"camera"`
	Kind      string    `json:"kind"`
	Verdict   string    `json:"verdict"`
	Matched   string    `json:"matched"`          // whom (or which plate) the event was matched to
	Person    string    `json:"person,omitempty"` // this_is: who it really is
	Note      string    `json:"note,omitempty"`
	Template  bool      `json:"template"` // the shot was offered as the person's template
	By        string    `json:"by"`
	Role      string    `json:"role"`
	At        time.Time `json:"at"`
	// Embedding is the event's face descriptor (faces), in Model's space; not answered.
	Embedding []float32 `json:"-"`
	Model     string    `json:"-"`
}

// InsertVerdict stores a verdict in tx (the audit row's transaction) and fills its id.
func (s *Store) InsertVerdict(ctx context.Context, tx pgx.Tx, v *Verdict) error {
	var emb []byte
	if v.Embedding != nil {
		emb = event.PackVector(v.Embedding)
	}
	return tx.QueryRow(ctx, `INSERT INTO match_verdicts (event_id, event_time, camera, kind, verdict, matched, person, note,
			template, embedding, model, by_name, by_role)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id, at`,
		v.EventID, v.EventTime, v.Camera, v.Kind, v.Verdict, v.Matched, v.Person, v.Note, v.Template, emb, v.Model, v.By, v.Role).
		Scan(&v.ID, &v.At)
}

const verdictCols = `id, event_id, event_time, camera, kind, verdict, matched, person, note, template, embedding, model, by_name, by_role, at`

func scanVerdict(row pgx.CollectableRow) (Verdict, error) {
	var v Verdict
	var emb []byte
	err := row.Scan(&v.ID, &v.EventID, &v.EventTime, &v.Camera, &v.Kind, &v.Verdict, &v.Matched, &v.Person, &v.Note,
		&v.Template, &emb, &v.Model, &v.By, &v.Role, &v.At)
	if len(emb) > 0 {
		v.Embedding = make([]float32, len(emb)/4)
		event.UnpackVector(emb, v.Embedding)
	}
	return v, err
}

// Verdicts lists the verdicts about a person (matched to them, or said to be them) or an event,
// newest first, at most 500.
func (s *Store) Verdicts(ctx context.Context, person, eventID string) ([]Verdict, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+verdictCols+` FROM match_verdicts
		WHERE ($1 = '' OR matched = $1 OR person = $1) AND ($2 = '' OR event_id = $2) ORDER BY id DESC LIMIT 500`, person, eventID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanVerdict)
}

// FaceVerdictsSince returns the face verdicts after id, oldest first, with their descriptors:
// what every node's matcher follows.
func (s *Store) FaceVerdictsSince(ctx context.Context, id int64) ([]Verdict, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+verdictCols+` FROM match_verdicts
		WHERE id > $1 AND kind = 'face' AND embedding IS NOT NULL ORDER BY id LIMIT 10000`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanVerdict)
}
