//go:build goface

// Package goface is the alternative face backend on dlib through github.com/Kagami/go-face: HOG
// detection, 68-point landmarks (Debian's libdlib-data predictor stands in for dlib's 5-point
// one, which no package ships) and the same ResNet descriptor as the dnn backend, so both live in
// one embedding space. Build with -tags goface; needs libdlib-dev, libatlas-base-dev and
// libdlib-data. A Recognizer serialises calls internally: use one per worker.
package goface

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	face "github.com/Kagami/go-face"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/recognizers"
)

// ShapePredictor68 is where Debian's libdlib-data installs the 68-point predictor.
const ShapePredictor68 = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"

// Faces detects and describes faces with dlib.
type Faces struct {
	rec *face.Recognizer
	dir string // the model folder go-face wants, made of links
}

// Space is the embedding space go-face describes faces in: dlib's.
func (f *Faces) Space() space.Space { return space.DlibV1 }

// Result is one face found by dlib.
type Result struct {
	Box       recognizers.Box       `json:"box"`
	Embedding recognizers.Embedding `json:"embedding"`
}

// New assembles the folder go-face expects (links to the manifest's dlib files and the 68-point
// predictor) and loads the recognizer.
func New(modelsDir string) (*Faces, error) {
	m, err := models.Load()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(ShapePredictor68); err != nil {
		return nil, fmt.Errorf("goface: %s missing (apt-get install libdlib-data): %w", ShapePredictor68, err)
	}
	dir, err := os.MkdirTemp("", "vigil-goface-")
	if err != nil {
		return nil, err
	}
	resnet, _ := m.Path(modelsDir, "goface-embedder")
	mmod, _ := m.Path(modelsDir, "goface-detector")
	links := map[string]string{
		"shape_predictor_5_face_landmarks.dat":      ShapePredictor68,
		"dlib_face_recognition_resnet_model_v1.dat": resnet,
		"mmod_human_face_detector.dat":              mmod,
	}
	for name, target := range links {
		abs, _ := filepath.Abs(target)
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	rec, err := face.NewRecognizer(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("goface: %w", err)
	}
	return &Faces{rec: rec, dir: dir}, nil
}

// Close frees the recognizer.
func (f *Faces) Close() {
	if f.rec != nil {
		f.rec.Close()
		f.rec = nil
		os.RemoveAll(f.dir)
	}
}

// Analyze finds and describes every face in a JPEG.
func (f *Faces) Analyze(jpeg []byte) ([]Result, error) {
	if f.rec == nil {
		return nil, errors.New("goface: closed")
	}
	faces, err := f.rec.Recognize(jpeg)
	if err != nil {
		return nil, fmt.Errorf("goface: %w", err)
	}
	out := make([]Result, len(faces))
	for i, fc := range faces {
		r := fc.Rectangle
		out[i].Box = recognizers.Box{X: float32(r.Min.X), Y: float32(r.Min.Y), W: float32(r.Dx()), H: float32(r.Dy())}
		out[i].Embedding = append(recognizers.Embedding(nil), fc.Descriptor[:]...)
	}
	return out, nil
}
