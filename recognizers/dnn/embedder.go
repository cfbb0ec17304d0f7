package dnn

import (
	"errors"
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
)

// Embedder describes faces with dlib's ResNet v1 (the face-api ONNX port).
type Embedder struct {
	net gocv.Net
}

// NewEmbedder loads the embedding model.
func NewEmbedder(model string) (*Embedder, error) {
	net := gocv.ReadNet(model, "")
	if net.Empty() {
		return nil, fmt.Errorf("dnn: loading face embedder %s failed", model)
	}
	return &Embedder{net: net}, nil
}

// Close frees the network.
func (e *Embedder) Close() { e.net.Close() }

// Embed aligns f to the chip and returns its 128-d descriptor.
func (e *Embedder) Embed(img gocv.Mat, f recognizers.Face) (recognizers.Embedding, error) {
	var out recognizers.Embedding
	if err := checkBGR(img); err != nil {
		return out, err
	}
	chip := Chip(img, f)
	defer chip.Close()
	return e.EmbedChip(chip)
}

// EmbedChip describes an already aligned 150 px BGR chip.
func (e *Embedder) EmbedChip(chip gocv.Mat) (recognizers.Embedding, error) {
	var out recognizers.Embedding
	// The graph wants RGB 0–255; mean subtraction and scaling are inside it.
	blob := gocv.BlobFromImage(chip, 1.0, image.Pt(ChipSize, ChipSize), gocv.NewScalar(0, 0, 0, 0), true, false)
	defer blob.Close()
	e.net.SetInput(blob, "")
	res := e.net.Forward("")
	defer res.Close()
	v, err := res.DataPtrFloat32()
	if err != nil {
		return out, err
	}
	if len(v) != len(out) {
		return out, errors.New("dnn: embedder output is not 128 values")
	}
	copy(out[:], v)
	return out, nil
}
