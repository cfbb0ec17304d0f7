package dnn

import (
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
)

// Liveness averages the softmaxes of MiniFASNetV2 (crop ×2.7) and MiniFASNetV1SE (crop ×4.0);
// index 1 is "real".
type Liveness struct {
	nets   [2]*imageNet
	loaded int
	scales [2]float64
}

// NewLiveness loads both models on OpenCV.
func NewLiveness(v2, v1se string) (*Liveness, error) { return NewLivenessOn(OpenCV, v2, v1se) }

// NewLivenessOn is NewLiveness on the given runtime.
func NewLivenessOn(rt Runtime, v2, v1se string) (*Liveness, error) {
	l := &Liveness{scales: [2]float64{2.7, 4.0}}
	for i, p := range []string{v2, v1se} {
		n, err := loadImageNet(p, rt)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("dnn: liveness model: %w", err)
		}
		l.nets[i] = n
		l.loaded++
	}
	return l, nil
}

// Close frees both networks.
func (l *Liveness) Close() {
	for i := 0; i < l.loaded; i++ {
		l.nets[i].Close()
	}
	l.loaded = 0
}

// Liveness returns the probability that f is a live face.
func (l *Liveness) Liveness(img gocv.Mat, f recognizers.Face) (float32, error) {
	if err := checkBGR(img); err != nil {
		return 0, err
	}
	var real float64
	for i := range l.nets {
		crop := cropBox(img, f.Box, l.scales[i])
		v, err := l.nets[i].forward(crop, image.Pt(80, 80), false)
		crop.Close()
		if err != nil || len(v) < 3 {
			return 0, fmt.Errorf("dnn: liveness output: %v (%d values)", err, len(v))
		}
		real += softmax(v[:3])[1]
	}
	return float32(real / 2), nil
}

func softmax(v []float32) []float64 {
	m := float64(v[0])
	for _, x := range v {
		m = math.Max(m, float64(x))
	}
	out := make([]float64, len(v))
	var s float64
	for i, x := range v {
		out[i] = math.Exp(float64(x) - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// cropBox cuts the box scaled by scale around its centre, shifted to stay inside the picture,
// resized to 80×80 (Silent-Face-Anti-Spoofing's CropImage).
func cropBox(img gocv.Mat, b recognizers.Box, scale float64) gocv.Mat {
	H, W := float64(img.Rows()), float64(img.Cols())
	bw, bh := math.Max(1, float64(b.W)), math.Max(1, float64(b.H))
	scale = math.Min(scale, math.Min((H-1)/bh, (W-1)/bw))
	nw, nh := bw*scale, bh*scale
	cx, cy := float64(b.X)+bw/2, float64(b.Y)+bh/2
	l, t, r, btm := cx-nw/2, cy-nh/2, cx+nw/2, cy+nh/2
	if l < 0 {
		r -= l
		l = 0
	}
	if t < 0 {
		btm -= t
		t = 0
	}
	if r > W-1 {
		l -= r - W + 1
		r = W - 1
	}
	if btm > H-1 {
		t -= btm - H + 1
		btm = H - 1
	}
	rect := image.Rect(int(l), int(t), int(r)+1, int(btm)+1).Intersect(image.Rect(0, 0, int(W), int(H)))
	roi := img.Region(rect)
	defer roi.Close()
	out := gocv.NewMat()
	gocv.Resize(roi, &out, image.Pt(80, 80), 0, 0, gocv.InterpolationLinear)
	return out
}
