package pipeline

import (
	"fmt"
	"math"
	"strings"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// EnrolGate is the minimum a photo must meet to become a template.
type EnrolGate struct {
	MinFace float32 // face height in pixels; default 60
	MaxYaw  float32 // degrees; default 40
	MinLive float32 // liveness probability; default 0 (photos of photos are how galleries are built)
}

func (g *EnrolGate) defaults() {
	if g.MinFace == 0 {
		g.MinFace = 60
	}
	if g.MaxYaw == 0 {
		g.MaxYaw = 40
	}
}

// EnrolFace checks a photo against the gate and returns its template. The photo must show
// exactly one face.
func EnrolFace(faces *dnn.Faces, img gocv.Mat, gate EnrolGate) (recognizers.Embedding, recognizers.Quality, error) {
	gate.defaults()
	var zero recognizers.Embedding // nil
	found, err := faces.DetectFaces(img)
	if err != nil {
		return zero, recognizers.Quality{}, err
	}
	var confident []recognizers.Face
	for _, f := range found {
		if f.Score >= 0.9 {
			confident = append(confident, f)
		}
	}
	switch len(confident) {
	case 0:
		return zero, recognizers.Quality{}, fmt.Errorf("no face found")
	case 1:
	default:
		return zero, recognizers.Quality{}, fmt.Errorf("%d faces found; an enrolment photo must show exactly one", len(confident))
	}
	f := confident[0]
	q := recognizers.Assess(img, f)
	switch {
	case f.Box.H < gate.MinFace:
		return zero, q, fmt.Errorf("face is %.0f px tall; at least %.0f needed", f.Box.H, gate.MinFace)
	case float32(math.Abs(float64(q.Yaw))) > gate.MaxYaw:
		return zero, q, fmt.Errorf("face turned %.0f°; at most %.0f° allowed", q.Yaw, gate.MaxYaw)
	}
	if gate.MinLive > 0 {
		p, err := faces.Liveness.Liveness(img, f)
		if err != nil {
			return zero, q, err
		}
		if p < gate.MinLive {
			return zero, q, fmt.Errorf("liveness %.2f below %.2f: a photo of a photo or a screen?", p, gate.MinLive)
		}
	}
	e, err := faces.Embed(img, f)
	return e, q, err
}

// PersonID turns a name into a stable identifier: "Barack Obama" → "barack-obama".
func PersonID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
