package access

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// Crop is an enrolled template's crop, opened, to describe the face again in another model's
// space under the consent it was enrolled with.
type Crop struct {
	Template  int64 // the template it was kept with
	Person    string
	Model     string // the template's model
	JPEG      []byte
	Quality   float32
	Liveness  float32
	Consent   string
	ConsentAt time.Time
	sealed    []byte
}

// CropsToReembed lists what a change to sp needs: the crops of templates in other models that
// no template of sp was made from yet, and the people with templates in other models but no crop
// (enrolled before crops were kept: they must enrol again).
func (e *Engine) CropsToReembed(ctx context.Context, sp space.Space) (todo []Crop, noCrop []string, err error) {
	rows, _ := e.pool.Query(ctx, `SELECT t.id, t.person_id, t.model, t.crop, t.quality, t.liveness, t.consent, t.consent_at
		FROM face_templates t
		WHERE t.model <> $1 AND NOT EXISTS (SELECT 1 FROM face_templates n WHERE n.model = $1 AND n.source_id = t.id)
		ORDER BY t.id`, sp.Name)
	withCrop, without := map[string]bool{}, map[string]bool{}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var c Crop
		if err := r.Scan(&c.Template, &c.Person, &c.Model, &c.sealed, &c.Quality, &c.Liveness, &c.Consent, &c.ConsentAt); err != nil {
			return struct{}{}, err
		}
		if c.sealed == nil {
			without[c.Person] = true
			return struct{}{}, nil
		}
		jpeg, err := e.secrets.openBytes("face crop", c.sealed)
		if err != nil {
			return struct{}{}, fmt.Errorf("template %d: %w", c.Template, err)
		}
		c.JPEG = jpeg
		withCrop[c.Person] = true
		todo = append(todo, c)
		return struct{}{}, nil
	})
	for p := range without {
		if !withCrop[p] {
			noCrop = append(noCrop, p)
		}
	}
	return todo, noCrop, err
}

// AddReembedded stores emb, the face of crop c described in sp, as a template of sp made from
// c's template: same person, same consent, the same sealed crop. Audited (face.reembed).
func (e *Engine) AddReembedded(ctx context.Context, who auth.Actor, c Crop, sp space.Space, emb []float32) (int64, error) {
	if err := sp.Check(emb); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var id int64
	err := e.change(ctx, who, "face.reembed", map[string]any{"person": c.Person, "from_template": c.Template, "from_model": c.Model, "model": sp.Name},
		func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `INSERT INTO face_templates (person_id, embedding, quality, liveness, consent_at, consent, model, crop, source_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`, c.Person, event.PackVector(emb), c.Quality, c.Liveness, c.ConsentAt, c.Consent,
				sp.Name, c.sealed, c.Template).Scan(&id)
		})
	return id, err
}
