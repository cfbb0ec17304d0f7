package dnn

import (
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"sort"
	"sync/atomic"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers/ort"
)

// Runtime is what runs the networks: OpenCV 4.6's DNN module, or ONNX Runtime's C library
// where it is installed (BenchmarkRuntimes: YuNet 2.6–3.0× faster on one core, the embedder
// 1.1–1.2×). Liveness stays on OpenCV, where its two small networks run faster.
type Runtime int

const (
	// Auto is ONNX Runtime when UseONNXRuntime has loaded it, else OpenCV.
	Auto Runtime = iota
	OpenCV
	ONNXRuntime
)

func (r Runtime) String() string {
	switch r {
	case OpenCV:
		return "opencv"
	case ONNXRuntime:
		return "onnxruntime"
	}
	return "auto"
}

// UseONNXRuntime loads ONNX Runtime's library (ort.Load): from then on Auto means ONNX Runtime.
func UseONNXRuntime(lib string) error {
	if err := ort.Load(lib); err != nil {
		return err
	}
	autoORT.Store(true)
	return nil
}

// autoORT: UseONNXRuntime was called (a test may load the library for one runtime's networks
// without changing what Auto means for the rest).
var autoORT atomic.Bool

// resolve turns Auto into the runtime in use.
func (r Runtime) resolve() (Runtime, error) {
	switch r {
	case Auto:
		if autoORT.Load() {
			return ONNXRuntime, nil
		}
		return OpenCV, nil
	case ONNXRuntime:
		if !ort.Loaded() {
			return r, errors.New("dnn: ONNX Runtime asked for but not loaded (pipeline.onnxruntime)")
		}
	}
	return r, nil
}

// imageNet is a network with one picture in and one output, on either runtime: the face
// embedder, the liveness models and the plate models.
type imageNet struct {
	cv   gocv.Net
	rt   *ort.Session
	in   string
	out  string
	blob []float32
	outs [][]float32
	tmp  gocv.Mat
	res  gocv.Mat // OpenCV: the last output, which forward's result views
}

func loadImageNet(path string, rt Runtime) (*imageNet, error) {
	rt, err := rt.resolve()
	if err != nil {
		return nil, err
	}
	if rt == OpenCV {
		net := gocv.ReadNet(path, "")
		if net.Empty() {
			return nil, fmt.Errorf("dnn: loading %s failed", path)
		}
		return &imageNet{cv: net, res: gocv.NewMat()}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dnn: %w", err)
	}
	if raw, err = ort.Constants(raw); err != nil {
		return nil, fmt.Errorf("dnn: %s: %w", path, err)
	}
	ins, outs, err := ort.IO(raw)
	if err != nil || len(ins) != 1 || len(outs) != 1 {
		return nil, fmt.Errorf("dnn: %s: not a one-input, one-output model (%v → %v): %v", path, ins, outs, err)
	}
	s, err := ort.NewSession(raw, ins[0], outs[0])
	if err != nil {
		return nil, fmt.Errorf("dnn: %s: %w", path, err)
	}
	return &imageNet{rt: s, in: ins[0], out: outs[0], tmp: gocv.NewMat()}, nil
}

func (n *imageNet) Close() {
	if n.rt != nil {
		n.rt.Close()
		n.tmp.Close()
		return
	}
	n.res.Close()
	n.cv.Close()
}

// forward runs the network on img resized to size, as gocv.BlobFromImage(img, 1, size, 0,
// swapRB, false) would give it. The result is valid until the next call.
func (n *imageNet) forward(img gocv.Mat, size image.Point, swapRB bool) ([]float32, error) {
	if n.rt == nil {
		blob := gocv.BlobFromImage(img, 1.0, size, gocv.NewScalar(0, 0, 0, 0), swapRB, false)
		defer blob.Close()
		return n.run(blob)
	}
	src := img
	if img.Cols() != size.X || img.Rows() != size.Y {
		gocv.Resize(img, &n.tmp, size, 0, 0, gocv.InterpolationLinear)
		src = n.tmp
	} else if !img.IsContinuous() {
		img.CopyTo(&n.tmp)
		src = n.tmp
	}
	n.blob = planar(src, swapRB, n.blob)
	var err error
	if n.outs, err = n.rt.Run(n.blob, []int64{1, 3, int64(size.Y), int64(size.X)}, n.outs); err != nil {
		return nil, err
	}
	return n.outs[0], nil
}

// run runs the network on a blob (gocv.BlobFromImage's N×C×H×W float32). The result is valid
// until the next call.
func (n *imageNet) run(blob gocv.Mat) ([]float32, error) {
	if n.rt == nil {
		n.cv.SetInput(blob, "")
		n.res.Close() // the previous call's output
		n.res = inference(func() gocv.Mat { return n.cv.Forward("") })
		return n.res.DataPtrFloat32()
	}
	v, err := blob.DataPtrFloat32()
	if err != nil {
		return nil, err
	}
	var shape []int64
	for _, d := range blob.Size() {
		shape = append(shape, int64(d))
	}
	if n.outs, err = n.rt.Run(v, shape, n.outs); err != nil {
		return nil, err
	}
	return n.outs[0], nil
}

// planar lays a continuous 8-bit BGR picture out as 1×3×H×W float32 (BGR, or RGB with swapRB),
// the pixel values unscaled, into buf.
func planar(img gocv.Mat, swapRB bool, buf []float32) []float32 {
	w, h := img.Cols(), img.Rows()
	px, _ := img.DataPtrUint8()
	n := w * h
	if cap(buf) < 3*n {
		buf = make([]float32, 3*n)
	}
	buf = buf[:3*n]
	c0, c2 := buf[:n], buf[2*n:]
	if swapRB {
		c0, c2 = c2, c0
	}
	c1 := buf[n : 2*n]
	px = px[:3*n]
	for i := 0; i < n; i++ {
		c0[i] = float32(px[3*i])
		c1[i] = float32(px[3*i+1])
		c2[i] = float32(px[3*i+2])
	}
	return buf
}

// yunetORT runs YuNet (the 2022mar model, OpenCV 4.6's FaceDetectorYN post-processing) on
// ONNX Runtime: the same network with its input freed to any size, then the same decoding of
// its priors and the same non-maximum suppression as OpenCV.
type yunetORT struct {
	s      *ort.Session
	score  float32
	nms    float32
	blob   []float32
	outs   [][]float32
	priors map[image.Point][]prior // by input size (a few sizes: see Detector)
	cand   []candidate
	kept   []image.Rectangle
}

type prior struct{ cx, cy, sx, sy float32 }

type candidate struct {
	row [15]float32     // a FaceDetectorYN row; row[14] is the score
	box image.Rectangle // truncated to whole pixels, as OpenCV's NMSBoxes sees it
}

func newYuNetORT(path string, score, nms float32) (*yunetORT, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dnn: %w", err)
	}
	model, err := ort.Dynamic(raw)
	if err == nil {
		model, err = ort.Constants(model)
	}
	if err != nil {
		return nil, fmt.Errorf("dnn: face detector %s: %w", path, err)
	}
	s, err := ort.NewSession(model, "input", "loc", "conf", "iou")
	if err != nil {
		return nil, fmt.Errorf("dnn: face detector %s: %w", path, err)
	}
	return &yunetORT{s: s, score: score, nms: nms, priors: map[image.Point][]prior{}}, nil
}

func (y *yunetORT) Close() { y.s.Close() }

// priorsFor is FaceDetectorYN's (OpenCV 4.6) anchor layout for a w×h input.
func (y *yunetORT) priorsFor(w, h int) []prior {
	sz := image.Pt(w, h)
	if p, ok := y.priors[sz]; ok {
		return p
	}
	if len(y.priors) >= 16 {
		clear(y.priors)
	}
	minSizes := [4][]float32{{10, 16, 24}, {32, 48}, {64, 96}, {128, 192, 256}}
	steps := [4]float32{8, 16, 32, 64}
	fw, fh := (w+1)/2/2, (h+1)/2/2
	var ps []prior
	for i := range 4 {
		fw, fh = fw/2, fh/2
		for r := 0; r < fh; r++ {
			for c := 0; c < fw; c++ {
				for _, m := range minSizes[i] {
					ps = append(ps, prior{
						cx: (float32(c) + 0.5) * steps[i] / float32(w), cy: (float32(r) + 0.5) * steps[i] / float32(h),
						sx: m / float32(w), sy: m / float32(h)})
				}
			}
		}
	}
	y.priors[sz] = ps
	return ps
}

// detect writes up to len(out)/15 faces of a continuous BGR picture into out as FaceDetectorYN
// rows (x, y, w, h, five landmarks, score), best first, and returns how many.
func (y *yunetORT) detect(img gocv.Mat, out []float32) (int, error) {
	w, h := img.Cols(), img.Rows()
	y.blob = planar(img, false, y.blob)
	var err error
	if y.outs, err = y.s.Run(y.blob, []int64{1, 3, int64(h), int64(w)}, y.outs); err != nil {
		return 0, err
	}
	ps := y.priorsFor(w, h)
	loc, conf, iou := y.outs[0], y.outs[1], y.outs[2]
	if len(loc) != 14*len(ps) || len(conf) != 2*len(ps) || len(iou) != len(ps) {
		return 0, fmt.Errorf("dnn: face detector gave %d rows for %d anchors", len(iou), len(ps))
	}
	const v0, v1 = 0.1, 0.2
	fw, fh := float32(w), float32(h)
	y.cand = y.cand[:0]
	for i, p := range ps {
		cls := conf[2*i+1]
		q := min(max(iou[i], 0), 1)
		score := float32(math.Sqrt(float64(cls * q)))
		if !(score > y.score) {
			continue
		}
		l := loc[14*i : 14*i+14]
		var c candidate
		cx := (p.cx + l[0]*v0*p.sx) * fw
		cy := (p.cy + l[1]*v0*p.sy) * fh
		bw := p.sx * float32(math.Exp(float64(l[2]*v0))) * fw
		bh := p.sy * float32(math.Exp(float64(l[3]*v1))) * fh
		c.row[0], c.row[1], c.row[2], c.row[3] = cx-bw/2, cy-bh/2, bw, bh
		for k := range 5 {
			c.row[4+2*k] = (p.cx + l[4+2*k]*v0*p.sx) * fw
			c.row[5+2*k] = (p.cy + l[5+2*k]*v0*p.sy) * fh
		}
		c.row[14] = score
		x0, y0 := int(c.row[0]), int(c.row[1])
		c.box = image.Rect(x0, y0, x0+int(c.row[2]), y0+int(c.row[3]))
		y.cand = append(y.cand, c)
	}
	// OpenCV's NMSBoxes: best score first (stable), a box kept unless it overlaps a kept one by
	// more than the threshold (intersection over union of the whole-pixel boxes).
	sort.SliceStable(y.cand, func(a, b int) bool { return y.cand[a].row[14] > y.cand[b].row[14] })
	n := 0
	kept := y.kept[:0]
	for _, c := range y.cand {
		if n*15 >= len(out) {
			break
		}
		keep := true
		for _, k := range kept {
			if overlap(c.box, k) > float64(y.nms) {
				keep = false
				break
			}
		}
		if !keep {
			continue
		}
		kept = append(kept, c.box)
		copy(out[n*15:], c.row[:])
		n++
	}
	y.kept = kept
	return n, nil
}

func overlap(a, b image.Rectangle) float64 {
	area := func(r image.Rectangle) int {
		if r.Dx() <= 0 || r.Dy() <= 0 {
			return 0
		}
		return r.Dx() * r.Dy()
	}
	aa, ab := area(a), area(b)
	if aa+ab <= 0 {
		return 1
	}
	in := float64(area(a.Intersect(b)))
	return in / (float64(aa+ab) - in)
}

// Configure applies pipeline.onnxruntime: "off" keeps the networks on OpenCV; "" (the default)
// puts them on ONNX Runtime where ort.Cached finds the verified library, and leaves them on
// OpenCV where it does not, the file there is not the verified one, or it fails to load (the
// note says why); a path must load.
// It returns the runtime in use and a note for the log.
func Configure(setting string) (Runtime, string, error) {
	switch setting {
	case "off":
		return OpenCV, "pipeline.onnxruntime: off", nil
	case "":
		p, err := ort.Cached()
		if err != nil {
			return OpenCV, err.Error(), nil
		}
		if p == "" {
			return OpenCV, "ONNX Runtime is not installed (scripts/fetch-onnxruntime.sh)", nil
		}
		if err := UseONNXRuntime(p); err != nil {
			return OpenCV, err.Error(), nil
		}
		return ONNXRuntime, "ONNX Runtime " + ort.Version() + " from " + p, nil
	}
	if err := UseONNXRuntime(setting); err != nil {
		return OpenCV, "", fmt.Errorf("pipeline.onnxruntime: %w", err)
	}
	return ONNXRuntime, "ONNX Runtime " + ort.Version() + " from " + setting, nil
}
