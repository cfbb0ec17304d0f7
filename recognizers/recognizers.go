// Package recognizers declares what vigil recognises in a picture (faces with landmarks,
// embeddings, liveness and quality; plates with corners, text and colour) and the small
// interfaces the pipeline uses. Backends live below: dnn (gocv + ONNX, default) and goface
// (go-face/dlib, build tag goface). A backend value is a native handle owned by one goroutine.
package recognizers

import (
	"errors"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// Point is a position in picture pixels.
type Point struct {
	X float32 `json:"x"`
	Y float32 `json:"y"`
}

// Box is an axis-aligned rectangle in picture pixels: the event's own type, so that a detection's
// box goes on the bus as it is.
type Box = event.Box

// Landmark indices of a face, as YuNet gives them.
const (
	RightEye = iota
	LeftEye
	Nose
	RightMouth
	LeftMouth
)

// Face is one detected face.
type Face struct {
	Box       Box      `json:"box"`
	Landmarks [5]Point `json:"landmarks"`
	Score     float32  `json:"score"`
}

// Quality describes how usable a face shot is, each part in [0, 1] (1 best).
type Quality struct {
	Score float32 `json:"score"` // the product of the parts: what the tracker ranks best shots by
	Size  float32 `json:"size"`  // face height against 112 px
	Sharp float32 `json:"sharp"` // variance of the Laplacian on the face, against 300
	Pose  float32 `json:"pose"`  // 1 frontal, falling with yaw and roll estimated from landmarks
	// Yaw and Roll estimates in degrees.
	Yaw  float32 `json:"yaw"`
	Roll float32 `json:"roll"`
}

// ErrBadImage means a picture cannot be used (empty, too small, not 8-bit BGR).
var ErrBadImage = errors.New("recognizers: unusable image")

// FaceDetector finds faces.
type FaceDetector interface {
	DetectFaces(img gocv.Mat) ([]Face, error)
}

// FaceEmbedder aligns a face to its chip and describes it in its Space.
type FaceEmbedder interface {
	Embed(img gocv.Mat, f Face) (Embedding, error)
	Space() Space
}

// LivenessChecker says how likely a face is a live person (1) rather than a photo or screen (0).
type LivenessChecker interface {
	Liveness(img gocv.Mat, f Face) (float32, error)
}

// Embedding, Space and Distance are the space package's: see there.
type (
	Embedding = space.Embedding
	Space     = space.Space
)

// Distance is space.Distance.
func Distance(a, b Embedding) float32 { return space.Distance(a, b) }
