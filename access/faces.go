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
	"github.com/vigil-oss/vigil/internal/core/space"
)

// LivenessMinimum is the liveness a face needs to open anything.
const LivenessMinimum = 0.5

// ErrDuplicate means an enrolled face looks like another person's.
var ErrDuplicate = errors.New("access: face already enrolled under another person")

// faceSet is every enrolled template of one space, flat for a fast scan.
type faceSet struct {
	space  space.Space
	person []string
	emb    []float32 // len(person) * space.Dims
}

// vector is template i.
func (f *faceSet) vector(i int) []float32 { return f.emb[i*f.space.Dims : (i+1)*f.space.Dims] }

// nearest is the nearest template's person (other than skip) and distance.
func (f *faceSet) nearest(q []float32, skip string) (string, float32) {
	c := f.candidates(q, func(p string) bool { return p != skip })
	return c.first, c.firstD
}

// candidates is the open-set answer among the templates whose person may: the nearest person,
// and the runner-up person's distance (+Inf when there is none).
type candidates struct {
	first           string
	firstD, secondD float32
}

func (f *faceSet) candidates(q []float32, may func(person string) bool) candidates {
	c := candidates{firstD: float32(math.Inf(1)), secondD: float32(math.Inf(1))}
	if len(q) != f.space.Dims {
		return c
	}
	for i, p := range f.person {
		if !may(p) {
			continue
		}
		d := space.Distance(f.vector(i), q)
		switch {
		case p == c.first:
			c.firstD = min(c.firstD, d)
		case d < c.firstD:
			c.secondD, c.first, c.firstD = c.firstD, p, d
		case d < c.secondD:
			c.secondD = d
		}
	}
	return c
}

func loadFaces(ctx context.Context, tx pgx.Tx, sp space.Space) (*faceSet, error) {
	rows, _ := tx.Query(ctx, `SELECT person_id, embedding FROM face_templates WHERE model = $1 ORDER BY id`, sp.Name)
	f := &faceSet{space: sp}
	_, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var p string
		var b []byte
		if err := r.Scan(&p, &b); err != nil {
			return struct{}{}, err
		}
		if len(b) != 4*sp.Dims {
			return struct{}{}, nil
		}
		f.person = append(f.person, p)
		n := len(f.emb)
		f.emb = append(f.emb, make([]float32, sp.Dims)...)
		event.UnpackVector(b, f.emb[n:])
		return struct{}{}, nil
	})
	return f, err
}

// FaceTemplate is an enrolment to store.
type FaceTemplate struct {
	Embedding []float32 // in the engine's space
	// Crop is the enrolment photo's face with its surroundings (JPEG): kept sealed under the
	// server's secret, for exactly one use, describing the face again when the model changes.
	Crop     []byte
	Quality  float32
	Liveness float32
	Consent  string // how consent was given; required
}

// AddFaceTemplate enrols a face for a person: consent recorded, a non-face credential required
// (a resident must never depend on their face alone), and refused with ErrDuplicate when the face
// matches another enrolled person's.
func (e *Engine) AddFaceTemplate(ctx context.Context, who auth.Actor, person string, t FaceTemplate) (int64, error) {
	sp := e.FaceSpace()
	if err := sp.Check(t.Embedding); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
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
	if other, d := s.faces.nearest(t.Embedding, person); other != "" && d < sp.Possible {
		return 0, fmt.Errorf("%w: this face matches %s (distance %.2f); flagged for review", ErrDuplicate, other, d)
	}
	var id int64
	var crop []byte
	if len(t.Crop) > 0 {
		crop = e.secrets.sealBytes("face crop", t.Crop)
	}
	err := e.change(ctx, who, "face.enrol", map[string]any{"person": person, "quality": t.Quality, "liveness": t.Liveness, "consent": t.Consent,
		"model": sp.Name, "crop_kept": crop != nil}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO face_templates (person_id, embedding, quality, liveness, consent_at, consent, model, crop)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, person, event.PackVector(t.Embedding), t.Quality, t.Liveness, time.Now(), t.Consent,
			sp.Name, crop).Scan(&id)
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
	now := e.now()
	v, dist := s.decideFace(doorID, f, e.factors.claimed(doorID, now), now, e.inside)
	extra := map[string]any{"credential": "face", "liveness": f.Liveness, "model": s.faces.space.Name}
	if v.person != "" {
		extra["distance"] = dist
	}
	if s.doors[doorID] != nil {
		risk := s.faceRisk(doorID)
		v = e.factors.pair(risk, doorID, "face", v, now)
		extra["policy"] = risk.Effective
	}
	return e.decide(ctx, doorID, s, v, extra, nonce)
}

func detailJSON(m map[string]any) json.RawMessage {
	b, _ := json.Marshal(m)
	return b
}

// NearestOther reports whether a face matches someone enrolled other than person, and whom (the
// same test enrolment refuses with ErrDuplicate).
func (e *Engine) NearestOther(emb []float32, person string) (string, bool) {
	sp := e.FaceSpace()
	if sp.Check(emb) != nil {
		return "", false
	}
	other, d := e.snapshot().faces.nearest(emb, person)
	return other, other != "" && d < sp.Possible
}
