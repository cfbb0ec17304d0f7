package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/event"
)

// Face decision thresholds.
const (
	FaceThreshold   = 0.50 // same as the pipeline's matcher
	LivenessMinimum = 0.5
)

// ErrDuplicate means an enrolled face looks like another person's.
var ErrDuplicate = errors.New("access: face already enrolled under another person")

// faceSet is every enrolled template, flat for a fast scan.
type faceSet struct {
	person []string
	emb    []float32 // len(person) * 128
}

func (f *faceSet) nearest(q []float32, skip string) (string, float32) {
	best, bestD := "", float32(math.MaxFloat32)
	for i, p := range f.person {
		if p == skip {
			continue
		}
		v := f.emb[i*128 : (i+1)*128]
		var s float32
		for j := 0; j < 128; j += 4 {
			a, b, c, d := v[j]-q[j], v[j+1]-q[j+1], v[j+2]-q[j+2], v[j+3]-q[j+3]
			s += a*a + b*b + c*c + d*d
		}
		if s < bestD {
			best, bestD = p, s
		}
	}
	return best, float32(math.Sqrt(float64(bestD)))
}

func loadFaces(ctx context.Context, tx pgx.Tx) (*faceSet, error) {
	rows, _ := tx.Query(ctx, `SELECT person_id, embedding FROM face_templates`)
	f := &faceSet{}
	_, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var p string
		var b []byte
		if err := r.Scan(&p, &b); err != nil {
			return struct{}{}, err
		}
		if len(b) != 512 {
			return struct{}{}, nil
		}
		f.person = append(f.person, p)
		n := len(f.emb)
		f.emb = append(f.emb, make([]float32, 128)...)
		event.UnpackVector(b, f.emb[n:])
		return struct{}{}, nil
	})
	return f, err
}

// FaceTemplate is an enrolment to store.
type FaceTemplate struct {
	Embedding []float32
	Quality   float32
	Liveness  float32
	Consent   string // how consent was given; required
}

// AddFaceTemplate enrols a face for a person: consent recorded, a non-face credential required
// (a resident must never depend on their face alone), and refused with ErrDuplicate when the face
// matches another enrolled person's.
func (e *Engine) AddFaceTemplate(ctx context.Context, who auth.Actor, person string, t FaceTemplate) (int64, error) {
	if len(t.Embedding) != 128 {
		return 0, fmt.Errorf("%w: embedding must have 128 values", ErrInvalid)
	}
	if t.Consent == "" {
		return 0, fmt.Errorf("%w: consent is required to enrol a face (say how it was given)", ErrInvalid)
	}
	s := e.snapshot()
	p := s.people[person]
	if p == nil {
		return 0, fmt.Errorf("%w: no person %q", ErrInvalid, person)
	}
	hasOther := false
	for _, c := range s.creds {
		if c.person == person && !c.revoked {
			hasOther = true
			break
		}
	}
	if !hasOther {
		return 0, fmt.Errorf("%w: give %s a card, PIN or QR code first: a face is never the only credential", ErrInvalid, person)
	}
	if other, d := s.faces.nearest(t.Embedding, person); other != "" && d < FaceThreshold {
		return 0, fmt.Errorf("%w: this face matches %s (distance %.2f); flagged for review", ErrDuplicate, other, d)
	}
	var id int64
	err := e.change(ctx, who, "face.enrol", map[string]any{"person": person, "quality": t.Quality, "liveness": t.Liveness, "consent": t.Consent}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO face_templates (person_id, embedding, quality, liveness, consent_at, consent)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, person, event.PackVector(t.Embedding), t.Quality, t.Liveness, time.Now(), t.Consent).Scan(&id)
	})
	return id, err
}

// EraseFaceTemplates deletes a person's templates; it returns how many.
func (e *Engine) EraseFaceTemplates(ctx context.Context, who auth.Actor, person, reason string) (int64, error) {
	var n int64
	err := e.change(ctx, who, "face.erase", map[string]any{"person": person, "reason": reason}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM face_templates WHERE person_id = $1`, person)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// FaceProbe is a face read from a photo: a controller's (the main face), or one of a search
// photo's.
type FaceProbe struct {
	Found     bool      `json:"-"`
	Box       [4]int    `json:"box"` // x, y, w, h in pixels
	Score     float32   `json:"score"`
	Embedding []float32 `json:"-"`
	Liveness  float32   `json:"-"`
}

// DecideFace answers a face at a door: liveness first, then the nearest enrolled template, then
// the same rules as any credential. Audited like every decision.
func (e *Engine) DecideFace(ctx context.Context, doorID string, f FaceProbe, nonce string) (Decision, error) {
	s := e.snapshot()
	v, dist := s.decideFace(doorID, f, e.now(), e.inside)
	extra := map[string]any{"credential": "face", "liveness": f.Liveness}
	if v.person != "" {
		extra["distance"] = dist
	}
	return e.decide(ctx, doorID, s, v, extra, nonce)
}

func detailJSON(m map[string]any) json.RawMessage {
	b, _ := json.Marshal(m)
	return b
}
