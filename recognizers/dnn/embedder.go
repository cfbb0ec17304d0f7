package dnn

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/recognizers"
)

// chipSpec is how a space's embedder wants its face: where the five landmarks land on a square
// chip of the given side, and the channel order (the graphs normalise inside).
type chipSpec struct {
	size     int
	template [5][2]float64
	swapRB   bool // the graph wants RGB
}

var chipSpecs = map[string]chipSpec{
	// Intel's five-point template for face-reidentification-retail-0095 (128 px, BGR 0–255).
	space.Intel0095.Name: {size: 128, template: [5][2]float64{{40.39, 59.08}, {87.38, 59.08}, {64.03, 81.98}, {44.73, 105.56}, {83.64, 105.56}}},
	space.DlibV1.Name:    {size: ChipSize, template: dlibTemplate, swapRB: true},
}

// Embedder describes faces in one space: Intel's face-reidentification-retail-0095 (256-d,
// cosine) or dlib's ResNet v1 (the face-api ONNX port, 128-d, Euclidean).
type Embedder struct {
	net   *imageNet
	space recognizers.Space
	chip  chipSpec
}

// NewEmbedder loads the embedding model of space from its file (on the Auto runtime).
func NewEmbedder(model string, sp space.Space) (*Embedder, error) {
	return NewEmbedderOn(Auto, model, sp)
}

// NewEmbedderOn is NewEmbedder on the given runtime.
func NewEmbedderOn(rt Runtime, model string, sp space.Space) (*Embedder, error) {
	spec, ok := chipSpecs[sp.Name]
	if !ok {
		return nil, fmt.Errorf("dnn: no face embedder for the %s space", sp.Name)
	}
	net, err := loadImageNet(model, rt)
	if err != nil {
		return nil, fmt.Errorf("dnn: face embedder: %w", err)
	}
	return &Embedder{net: net, space: sp, chip: spec}, nil
}

// Close frees the network.
func (e *Embedder) Close() { e.net.Close() }

// Space is the space the embedder describes faces in.
func (e *Embedder) Space() recognizers.Space { return e.space }

// Embed aligns f to the space's chip and describes it.
func (e *Embedder) Embed(img gocv.Mat, f recognizers.Face) (recognizers.Embedding, error) {
	if err := checkBGR(img); err != nil {
		return nil, err
	}
	chip := warp(img, f.Landmarks, e.chip.template, e.chip.size)
	defer chip.Close()
	return e.EmbedChip(chip)
}

// EmbedChip describes an already aligned BGR chip of the space's size.
func (e *Embedder) EmbedChip(chip gocv.Mat) (recognizers.Embedding, error) {
	v, err := e.net.forward(chip, image.Pt(e.chip.size, e.chip.size), e.chip.swapRB)
	if err != nil {
		return nil, err
	}
	if len(v) != e.space.Dims {
		return nil, fmt.Errorf("dnn: the %s embedder gave %d values, not %d", e.space.Name, len(v), e.space.Dims)
	}
	out := make(recognizers.Embedding, len(v))
	copy(out, v)
	if e.space.Cosine {
		space.Normalize(out)
	}
	return out, nil
}
