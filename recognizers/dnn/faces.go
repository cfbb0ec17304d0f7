package dnn

import (
	"errors"
	"fmt"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/recognizers"
)

// Faces bundles detection, embedding and liveness for one worker.
type Faces struct {
	*Detector
	*Embedder
	*Liveness
}

// FaceResult is everything vigil knows about one face in a picture.
type FaceResult struct {
	recognizers.Face
	Quality   recognizers.Quality   `json:"quality"`
	Liveness  float32               `json:"liveness"`
	Embedding recognizers.Embedding `json:"embedding"`
}

// NewFaces loads the face models named in the manifest from dir, embedding in the default space.
func NewFaces(dir string, opts DetectorOptions) (*Faces, error) {
	return NewFacesIn(dir, space.DefaultSpace, opts)
}

// NewFacesIn is NewFaces embedding in space.
func NewFacesIn(dir string, sp space.Space, opts DetectorOptions) (*Faces, error) {
	m, err := models.Load()
	if err != nil {
		return nil, err
	}
	path := func(name string) string {
		p, _ := m.Path(dir, name)
		return p
	}
	f := &Faces{}
	if f.Detector, err = NewDetector(path("face-detector"), opts); err != nil {
		return nil, err
	}
	if f.Embedder, err = NewEmbedderOn(opts.Runtime, path(sp.Model), sp); err != nil {
		f.Close()
		return nil, err
	}
	// Liveness stays on OpenCV: its two small networks run slower on ONNX Runtime (5.6 against
	// 8.2 ms, BenchmarkRuntimes).
	if f.Liveness, err = NewLiveness(path("liveness-v2"), path("liveness-v1se")); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close frees every model; it unwinds a partial NewFaces too.
func (f *Faces) Close() {
	if f.Detector != nil {
		f.Detector.Close()
	}
	if f.Embedder != nil {
		f.Embedder.Close()
	}
	if f.Liveness != nil {
		f.Liveness.Close()
	}
}

// Analyze detects every face and describes each: quality, liveness, embedding.
func (f *Faces) Analyze(img gocv.Mat) ([]FaceResult, error) {
	faces, err := f.DetectFaces(img)
	if err != nil {
		return nil, err
	}
	return f.Describe(img, faces)
}

// Describe describes faces in img: found in it, or found on another picture of the same moment
// (a sub-stream) and mapped into img's pixels.
func (f *Faces) Describe(img gocv.Mat, faces []recognizers.Face) ([]FaceResult, error) {
	return f.DescribeWith(img, faces, true)
}

// DescribeWith is Describe, with the liveness model run or not: it matters only where a face
// opens a door, and costs a third of a face's description (Liveness stays 0: not assessed).
func (f *Faces) DescribeWith(img gocv.Mat, faces []recognizers.Face, liveness bool) ([]FaceResult, error) {
	var err error
	out := make([]FaceResult, 0, len(faces))
	var errs []error
	for i, fc := range faces {
		r := FaceResult{Face: fc, Quality: recognizers.Assess(img, fc)}
		if r.Embedding, err = f.Embed(img, fc); err != nil {
			errs = append(errs, fmt.Errorf("face %d: embedding: %w", i, err))
			continue
		}
		if !liveness {
			out = append(out, r)
			continue
		}
		if r.Liveness, err = f.Liveness.Liveness(img, fc); err != nil {
			errs = append(errs, fmt.Errorf("face %d: liveness: %w", i, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// Main returns the index of the largest face among those scoring at least 0.9 (or among all when
// none does), or -1 for none: the face a portrait or an enrolment photo is about.
func Main(faces []recognizers.Face) int {
	best, bestArea, confident := -1, float32(-1), false
	for _, f := range faces {
		confident = confident || f.Score >= 0.9
	}
	for i, f := range faces {
		if confident && f.Score < 0.9 {
			continue
		}
		if a := f.Box.W * f.Box.H; a > bestArea {
			best, bestArea = i, a
		}
	}
	return best
}
