package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// Photos reads faces from uploaded photos: every face of a search photo, the main face of a
// door controller's photo, and an enrolment photo through the enrolment gate. Its models load
// on first use and it analyses one photo at a time; a node keeps one Photos for doors and
// another for searches, so that an investigator's photo never queues ahead of a door.
type Photos struct {
	dir   string
	space space.Space

	mu    sync.Mutex
	faces *dnn.Faces
}

// NewPhotos returns a reader over the models in dir.
func NewPhotos(dir string, sp space.Space) *Photos { return &Photos{dir: dir, space: sp} }

// Space is the embedding space the photos' faces are described in.
func (p *Photos) Space() space.Space { return p.space }

// PhotoError is a problem with the photo itself (it cannot be decoded, or the enrolment gate
// refuses it): the caller's to fix, so the API answers it 422 with its message.
type PhotoError struct{ msg string }

func (e *PhotoError) Error() string { return e.msg }

// BadInput marks the error as the client's.
func (e *PhotoError) BadInput() bool { return true }

// Faces finds and embeds every confident face of a photo, largest first.
func (p *Photos) Faces(ctx context.Context, img []byte) ([]access.FaceProbe, error) {
	var out []access.FaceProbe
	err := p.with(img, func(faces *dnn.Faces, m gocv.Mat) error {
		found, err := faces.DetectFaces(m)
		if err != nil {
			return err
		}
		// Largest first: the face a photo is about.
		slices.SortFunc(found, func(a, b recognizers.Face) int {
			return cmp.Compare(b.Box.W*b.Box.H, a.Box.W*a.Box.H)
		})
		for _, fc := range found {
			if fc.Score < 0.6 {
				continue
			}
			emb, err := faces.Embed(m, fc)
			if err != nil {
				return err
			}
			out = append(out, access.FaceProbe{Found: true, Box: [4]int{int(fc.Box.X), int(fc.Box.Y), int(fc.Box.W), int(fc.Box.H)},
				Score: fc.Score, Embedding: emb})
		}
		return nil
	})
	return out, err
}

// Probe finds the main face of a door photo: its embedding and liveness. A photo with no face
// is a probe with Found false, not an error.
func (p *Photos) Probe(ctx context.Context, img []byte) (access.FaceProbe, error) {
	var pr access.FaceProbe
	err := p.with(img, func(faces *dnn.Faces, m gocv.Mat) error {
		found, err := faces.DetectFaces(m)
		if err != nil {
			return err
		}
		i := dnn.Main(found)
		if i < 0 {
			return nil
		}
		emb, err := faces.Embed(m, found[i])
		if err != nil {
			return err
		}
		if pr.Liveness, err = faces.Liveness.Liveness(m, found[i]); err != nil {
			return err
		}
		b := found[i].Box
		pr.Found, pr.Embedding, pr.Score = true, emb, found[i].Score
		pr.Box = [4]int{int(b.X), int(b.Y), int(b.W), int(b.H)}
		return nil
	})
	return pr, err
}

// Enrol applies the enrolment gate (exactly one face, at least 60 px, yaw ≤ 40°, live) to a photo.
func (p *Photos) Enrol(ctx context.Context, img []byte) (access.FaceTemplate, error) {
	var t access.FaceTemplate
	err := p.with(img, func(faces *dnn.Faces, m gocv.Mat) error {
		emb, q, err := EnrolFace(faces, m, EnrolGate{MinLive: access.LivenessMinimum})
		if err != nil {
			return &PhotoError{"enrolment refused: " + err.Error()}
		}
		found, _ := faces.DetectFaces(m)
		if i := dnn.Main(found); i >= 0 {
			t.Liveness, _ = faces.Liveness.Liveness(m, found[i])
			t.Crop = cropOf(m, found[i].Box, 2.0, 400).JPEG()
		}
		t.Embedding, t.Quality = emb, q.Score
		return nil
	})
	return t, err
}

// Close releases the models.
func (p *Photos) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faces != nil {
		p.faces.Close()
		p.faces = nil
	}
}

// with runs fn with the models loaded (once) and the image decoded, one photo at a time.
func (p *Photos) with(img []byte, fn func(faces *dnn.Faces, m gocv.Mat) error) error {
	m, err := recognizers.DecodeImage(img)
	if err != nil {
		return &PhotoError{fmt.Sprintf("not a decodable JPEG or PNG image: %v", err)}
	}
	defer m.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faces == nil {
		f, err := dnn.NewFacesIn(p.dir, p.space, dnn.DetectorOptions{})
		if err != nil {
			return err
		}
		p.faces = f
	}
	return fn(p.faces, m)
}

// Describe embeds the main face of a kept enrolment crop (a change of model): no enrolment gate,
// the photo passed it when it was enrolled; a crop with no face is a PhotoError.
func (p *Photos) Describe(ctx context.Context, img []byte) (recognizers.Embedding, error) {
	pr, err := p.Probe(ctx, img)
	switch {
	case err != nil:
		return nil, err
	case !pr.Found:
		return nil, &PhotoError{"no face in the kept crop"}
	}
	return pr.Embedding, nil
}
