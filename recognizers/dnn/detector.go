// Package dnn is the default recognizer backend: OpenCV 4.6's DNN module through gocv with the
// ONNX models of the manifest. YuNet is run through cv::FaceDetectorYN (wrapped in a few lines
// of C++, since gocv 0.31 does not wrap it). Every type here owns native handles: one goroutine
// uses it, and Close frees it.
package dnn

// #cgo pkg-config: opencv4
// #cgo CXXFLAGS: -std=c++11
// #include <stdlib.h>
// #include "yunet.h"
import "C"

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
)

// SetThreads sets how many threads OpenCV uses inside one inference (process-wide). vigil runs
// one model set per worker, so 1 is the efficient setting with as many workers as cores; 0 lets
// OpenCV use every core for each call (lowest latency for a single stream).
//
// OpenCV's thread pool must not be resized while a network runs on it (a parallel_for in flight
// can wait forever): SetThreads waits for the inference in progress, and holds new inference
// off while it resizes. Setting the count it already has does nothing.
func SetThreads(n int) {
	threadsMu.Lock()
	defer threadsMu.Unlock()
	if threadsSet && threads == n {
		return
	}
	C.vigil_set_threads(C.int(n))
	threads, threadsSet = n, true
}

var (
	threadsMu  sync.RWMutex // write: SetThreads; read: every inference
	threads    int
	threadsSet bool
)

// inference runs fn (a network's forward pass) while the thread pool is not being resized.
func inference[T any](fn func() T) T {
	threadsMu.RLock()
	defer threadsMu.RUnlock()
	return fn()
}

// DetectorOptions tune face detection.
type DetectorOptions struct {
	// Score is the minimum detection score. Default 0.8 (YuNet's own default; the selftest uses it).
	Score float32
	// NMS is the overlap threshold for non-maximum suppression. Default 0.3.
	NMS float32
	// MaxSide downscales pictures so their longer side is at most this before detection.
	// Default 640: YuNet's sweet spot; a 40 px face at 720p is still 35 px at 640.
	MaxSide int
	// Runtime runs the face networks (detector, embedder, liveness). Default Auto.
	Runtime Runtime
}

func (o *DetectorOptions) defaults() {
	if o.Score == 0 {
		o.Score = 0.8
	}
	if o.NMS == 0 {
		o.NMS = 0.3
	}
	if o.MaxSide == 0 {
		o.MaxSide = 640
	}
}

// maxFaces bounds one picture's detections.
const maxFaces = 256

// minSide is the smallest picture YuNet is given; smaller ones are padded. OpenCV 4.6's YuNet
// throws on some tiny inputs (its feature pyramid divides by 32).
const minSide = 64

// Detector finds faces with YuNet.
//
// It keeps one network per input size (the maxNets last used). OpenCV re-plans a network's
// buffers whenever its input size changes, and motion regions come in many sizes: on a 640×360
// sub-stream, four region sizes in turn cost 25 ms a detection with one network and 8.1 ms with
// one per size for faces up close, 3.4 and 2.3 ms for passers-by (BenchmarkDetectRegionSizes).
// Regions are rounded up to regionStep so that a few sizes serve every region.
type Detector struct {
	opts   DetectorOptions
	model  string
	nets   []sizedNet
	clock  uint64
	loads  int // networks loaded (a miss of the size cache)
	keep   int // networks kept: maxNets (tests and benchmarks compare 1)
	step   int // regionStep (tests and benchmarks compare 32: no rounding beyond the grid)
	closed bool
	out    []float32
	rt     *yunetORT // on ONNX Runtime (then nets stays empty)
}

type sizedNet struct {
	size image.Point
	h    C.VigilYuNet
	used uint64 // d.clock when last used
}

// maxNets bounds the networks a Detector keeps (one per input size, ~3 MB each at the
// sub-stream's sizes), the least recently used going first.
const maxNets = 6

// NewDetector loads the YuNet model.
func NewDetector(model string, opts DetectorOptions) (*Detector, error) {
	opts.defaults()
	d := &Detector{opts: opts, model: model, keep: maxNets, step: regionStep, out: make([]float32, maxFaces*15)}
	rt, err := opts.Runtime.resolve()
	if err != nil {
		return nil, err
	}
	if rt == ONNXRuntime {
		if d.rt, err = newYuNetORT(model, opts.Score, opts.NMS); err != nil {
			return nil, err
		}
		return d, nil
	}
	if _, err := d.net(image.Pt(opts.MaxSide, opts.MaxSide*9/16)); err != nil {
		return nil, err
	}
	return d, nil
}

// net returns the network for inputs of size sz, loading it if none is kept.
func (d *Detector) net(sz image.Point) (C.VigilYuNet, error) {
	d.clock++
	old := -1
	for i := range d.nets {
		if d.nets[i].size == sz {
			d.nets[i].used = d.clock
			return d.nets[i].h, nil
		}
		if old < 0 || d.nets[i].used < d.nets[old].used {
			old = i
		}
	}
	cpath := C.CString(d.model)
	defer C.free(unsafe.Pointer(cpath))
	var errbuf [512]C.char
	h := C.vigil_yunet_new(cpath, C.int(sz.X), C.int(sz.Y), C.float(d.opts.Score), C.float(d.opts.NMS), 5000, &errbuf[0], C.int(len(errbuf)))
	if h == nil {
		return nil, fmt.Errorf("dnn: loading face detector %s: %s", d.model, C.GoString(&errbuf[0]))
	}
	d.loads++
	n := sizedNet{size: sz, h: h, used: d.clock}
	if len(d.nets) < d.keep {
		d.nets = append(d.nets, n)
	} else {
		C.vigil_yunet_free(d.nets[old].h)
		d.nets[old] = n
	}
	return h, nil
}

// Close frees the detector.
func (d *Detector) Close() {
	for _, n := range d.nets {
		C.vigil_yunet_free(n.h)
	}
	if d.rt != nil && !d.closed {
		d.rt.Close()
	}
	d.nets, d.closed = nil, true
}

// DetectFaces returns the faces in a BGR picture, in its own coordinates.
func (d *Detector) DetectFaces(img gocv.Mat) ([]recognizers.Face, error) {
	return d.DetectSized(img, nil, 0)
}

// DetectRegions finds faces in the given regions of a BGR picture only (rectangles in its
// pixels), at the scale DetectFaces would use on the whole picture: the same faces, at the cost
// of the regions' pixels. Faces found twice where regions overlap are kept once. (Searching small
// regions of a sub-stream at twice the scale was tried: it cost 18% of the node's CPU at the
// site's peak and found no face more on bench/site.)
func (d *Detector) DetectRegions(img gocv.Mat, regions []image.Rectangle) ([]recognizers.Face, error) {
	return d.DetectSized(img, regions, 0)
}

// DetectSized is DetectRegions (DetectFaces when regions is nil) on a camera whose faces are at
// least minFace pixels tall in img (0: any size): the whole picture is searched at the scale
// that brings such a face down to bigFace pixels, when that is smaller than DetectFaces' own. The
// faces it finds are where they are, but their landmarks are too coarse to align a face for
// its embedding: Refine them, on the main picture when there is one. A door unit sees its
// residents' faces at a fifth of the picture's height or more: on a 640×360 sub-stream the
// search costs a fifth of the whole picture's (BenchmarkDoorFrame).
func (d *Detector) DetectSized(img gocv.Mat, regions []image.Rectangle, minFace int) ([]recognizers.Face, error) {
	if d.closed {
		return nil, errors.New("dnn: detector closed")
	}
	if err := checkBGR(img); err != nil {
		return nil, err
	}
	scale := d.scaleFor(img)
	if minFace > 0 && float32(bigFace)/float32(minFace) < scale {
		// The whole picture at the coarse scale, whatever moved: it costs about what the
		// regions would, in one network size (regions at this scale come in a dozen more
		// sizes, and a worker reloading networks held door frames in its queue for a second).
		return d.detect(img, float32(bigFace)/float32(minFace), image.Point{})
	}
	if regions == nil {
		return d.detect(img, scale, image.Point{})
	}
	var out []recognizers.Face
	for _, r := range regions {
		// Each region starts on the detector's coarsest grid (32 px at the detection scale), so
		// its anchors and the resize's samples fall where the whole picture's do: the same faces
		// with the same landmarks, not merely nearby ones.
		grid := max(1, int(32/scale+0.5))
		r = grow(r, grid, grid*(d.step/32), image.Rect(0, 0, img.Cols(), img.Rows()))
		if r.Dx() < 8 || r.Dy() < 8 {
			continue
		}
		roi := img.Region(r)
		faces, err := d.detect(roi, scale, r.Min)
		roi.Close()
		if err != nil {
			return nil, err
		}
		earlier := len(out) // a face may be found again only by another region
		for _, f := range faces {
			if dup := duplicate(out[:earlier], f); dup >= 0 {
				if f.Score > out[dup].Score {
					out[dup] = f
				}
				continue
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// bigFace is the height in pixels, at the detection scale, down to which DetectSized shrinks a
// camera's smallest face: YuNet finds faces from about 10 px.
const bigFace = 32

// Refining a face: it is searched for again at the scale that makes it refineFace pixels tall
// (or the picture's own, for a smaller face), in a square of refineSide pixels at that scale
// around it: one network size serves every refined face. (A face of 80 px in the same square
// is mostly not found: YuNet wants more of the picture around a face.)
const (
	refineFace = 64
	refineSide = 192
)

// Refine finds f again in img, in a small window around it at a scale where its landmarks are
// fit to align it for an embedding (a face found by DetectSized, or on a sub-stream and mapped
// to the main picture): the face found there that overlaps f most, false when none does (f was
// not a face).
func (d *Detector) Refine(img gocv.Mat, f recognizers.Face) (recognizers.Face, bool, error) {
	if d.closed {
		return f, false, errors.New("dnn: detector closed")
	}
	if err := checkBGR(img); err != nil {
		return f, false, err
	}
	scale := min(1, refineFace/max(1, f.Box.H))
	side := int(refineSide/scale + 0.5)
	cx, cy := int(f.Box.X+f.Box.W/2), int(f.Box.Y+f.Box.H/2)
	sq := image.Rect(cx-side/2, cy-side/2, cx-side/2+side, cy-side/2+side)
	in := sq.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if in.Dx() < 8 || in.Dy() < 8 {
		return f, false, nil
	}
	// The square around the face, black where it runs off the picture: YuNet's input stays
	// refineSide square (OpenCV 4.6's YuNet finds nothing on some sizes that are not
	// multiples of 32).
	roi := img.Region(in)
	win := gocv.NewMat()
	gocv.CopyMakeBorder(roi, &win, in.Min.Y-sq.Min.Y, sq.Max.Y-in.Max.Y, in.Min.X-sq.Min.X, sq.Max.X-in.Max.X, gocv.BorderConstant, colorBlack)
	roi.Close()
	faces, err := d.detect(win, float32(refineSide)/float32(side), sq.Min)
	win.Close()
	if err != nil {
		return f, false, err
	}
	best, most := -1, float32(0.3)
	for i, g := range faces {
		if o := g.Box.Overlap(f.Box); o > most {
			best, most = i, o
		}
	}
	if best < 0 {
		return f, false, nil
	}
	return faces[best], true, nil
}

// regionStep: region sizes are rounded up to a multiple of this (pixels at the detection scale),
// so that a few networks serve every region (see Detector).
const regionStep = 64

// grow puts r's corner on the grid and rounds its size up to a multiple of step, within bounds:
// at an edge it moves back by whole grid cells (its pixels stay in) and ends at the edge.
func grow(r image.Rectangle, grid, step int, bounds image.Rectangle) image.Rectangle {
	r = r.Intersect(bounds)
	if r.Empty() {
		return r
	}
	r.Min = image.Pt(r.Min.X/grid*grid, r.Min.Y/grid*grid)
	w := (r.Dx() + step - 1) / step * step
	h := (r.Dy() + step - 1) / step * step
	r.Max = r.Min.Add(image.Pt(w, h))
	if r.Max.X > bounds.Max.X {
		r.Min.X = max(bounds.Min.X, (bounds.Max.X-w)/grid*grid)
		r.Max.X = bounds.Max.X
	}
	if r.Max.Y > bounds.Max.Y {
		r.Min.Y = max(bounds.Min.Y, (bounds.Max.Y-h)/grid*grid)
		r.Max.Y = bounds.Max.Y
	}
	return r
}

// duplicate returns the index of a face in fs that is f seen again (boxes overlapping by more
// than half their union), or -1.
func duplicate(fs []recognizers.Face, f recognizers.Face) int {
	for i, g := range fs {
		if f.Box.Overlap(g.Box) > 0.5 {
			return i
		}
	}
	return -1
}

// scaleFor is the factor that brings a picture's longer side to MaxSide (1 when it is smaller).
func (d *Detector) scaleFor(img gocv.Mat) float32 {
	if m := max(img.Cols(), img.Rows()); m > d.opts.MaxSide {
		return float32(d.opts.MaxSide) / float32(m)
	}
	return 1
}

// detect runs YuNet on img scaled by scale and returns faces in img's pixels moved by off.
func (d *Detector) detect(img gocv.Mat, scale float32, off image.Point) ([]recognizers.Face, error) {
	work := img
	if scale != 1 {
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(img, &small, image.Pt(max(1, int(float32(img.Cols())*scale+0.5)), max(1, int(float32(img.Rows())*scale+0.5))), 0, 0, gocv.InterpolationLinear)
		work = small
	}
	if work.Cols() < minSide || work.Rows() < minSide {
		padded := gocv.NewMat()
		defer padded.Close()
		gocv.CopyMakeBorder(work, &padded, 0, max(0, minSide-work.Rows()), 0, max(0, minSide-work.Cols()), gocv.BorderConstant, colorBlack)
		work = padded
	}
	if !work.IsContinuous() { // a region of a larger picture
		cont := work.Clone()
		defer cont.Close()
		work = cont
	}
	n, err := d.run(work)
	if err != nil {
		return nil, err
	}
	ox, oy := float32(off.X), float32(off.Y)
	faces := make([]recognizers.Face, 0, n)
	for i := 0; i < n; i++ {
		r := d.out[i*15 : i*15+15]
		f := recognizers.Face{
			Box:   recognizers.Box{X: r[0]/scale + ox, Y: r[1]/scale + oy, W: r[2] / scale, H: r[3] / scale},
			Score: r[14],
		}
		for k := 0; k < 5; k++ {
			f.Landmarks[k] = recognizers.Point{X: r[4+2*k]/scale + ox, Y: r[5+2*k]/scale + oy}
		}
		faces = append(faces, f)
	}
	return faces, nil
}

// run detects faces in a continuous BGR picture into d.out and returns how many.
func (d *Detector) run(work gocv.Mat) (int, error) {
	if d.rt != nil {
		n, err := d.rt.detect(work, d.out)
		if err != nil {
			return 0, fmt.Errorf("dnn: face detection on %dx%d: %w", work.Cols(), work.Rows(), err)
		}
		return n, nil
	}
	h, err := d.net(image.Pt(work.Cols(), work.Rows()))
	if err != nil {
		return 0, err
	}
	var errbuf [512]C.char
	n := inference(func() C.int {
		return C.vigil_yunet_detect(h, unsafe.Pointer(work.Ptr()), (*C.float)(unsafe.Pointer(&d.out[0])), maxFaces, &errbuf[0], C.int(len(errbuf)))
	})
	if n < 0 {
		return 0, fmt.Errorf("dnn: face detection on %dx%d: %s", work.Cols(), work.Rows(), C.GoString(&errbuf[0]))
	}
	return int(n), nil
}

func checkBGR(img gocv.Mat) error {
	if img.Empty() {
		return fmt.Errorf("%w: empty", recognizers.ErrBadImage)
	}
	if img.Type() != gocv.MatTypeCV8UC3 {
		return fmt.Errorf("%w: type %v, want 8-bit BGR", recognizers.ErrBadImage, img.Type())
	}
	if img.Cols() < 8 || img.Rows() < 8 {
		return fmt.Errorf("%w: %dx%d is too small", recognizers.ErrBadImage, img.Cols(), img.Rows())
	}
	return nil
}
