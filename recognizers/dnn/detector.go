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
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
)

// SetThreads sets how many threads OpenCV uses inside one inference (process-wide). vigil runs
// one model set per worker, so 1 is the efficient setting with as many workers as cores; 0 lets
// OpenCV use every core for each call (lowest latency for a single stream).
func SetThreads(n int) { C.vigil_set_threads(C.int(n)) }

// DetectorOptions tune face detection.
type DetectorOptions struct {
	// Score is the minimum detection score. Default 0.8 (YuNet's own default; the selftest uses it).
	Score float32
	// NMS is the overlap threshold for non-maximum suppression. Default 0.3.
	NMS float32
	// MaxSide downscales pictures so their longer side is at most this before detection.
	// Default 640: YuNet's sweet spot; a 40 px face at 720p is still 35 px at 640.
	MaxSide int
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
type Detector struct {
	opts DetectorOptions
	h    C.VigilYuNet
	out  []float32
}

// NewDetector loads the YuNet model.
func NewDetector(model string, opts DetectorOptions) (*Detector, error) {
	opts.defaults()
	cpath := C.CString(model)
	defer C.free(unsafe.Pointer(cpath))
	var errbuf [512]C.char
	h := C.vigil_yunet_new(cpath, C.float(opts.Score), C.float(opts.NMS), 5000, &errbuf[0], C.int(len(errbuf)))
	if h == nil {
		return nil, fmt.Errorf("dnn: loading face detector %s: %s", model, C.GoString(&errbuf[0]))
	}
	return &Detector{opts: opts, h: h, out: make([]float32, maxFaces*15)}, nil
}

// Close frees the detector.
func (d *Detector) Close() {
	if d.h != nil {
		C.vigil_yunet_free(d.h)
		d.h = nil
	}
}

// DetectFaces returns the faces in a BGR picture, in its own coordinates.
func (d *Detector) DetectFaces(img gocv.Mat) ([]recognizers.Face, error) {
	if d.h == nil {
		return nil, errors.New("dnn: detector closed")
	}
	if err := checkBGR(img); err != nil {
		return nil, err
	}
	work := img
	scale := float32(1)
	if m := max(img.Cols(), img.Rows()); m > d.opts.MaxSide {
		scale = float32(d.opts.MaxSide) / float32(m)
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(img, &small, image.Pt(int(float32(img.Cols())*scale+0.5), int(float32(img.Rows())*scale+0.5)), 0, 0, gocv.InterpolationLinear)
		work = small
	}
	if work.Cols() < minSide || work.Rows() < minSide {
		padded := gocv.NewMat()
		defer padded.Close()
		gocv.CopyMakeBorder(work, &padded, 0, max(0, minSide-work.Rows()), 0, max(0, minSide-work.Cols()), gocv.BorderConstant, colorBlack)
		work = padded
	}
	var errbuf [512]C.char
	n := C.vigil_yunet_detect(d.h, unsafe.Pointer(work.Ptr()), (*C.float)(unsafe.Pointer(&d.out[0])), maxFaces, &errbuf[0], C.int(len(errbuf)))
	if n < 0 {
		return nil, fmt.Errorf("dnn: face detection on %dx%d: %s", work.Cols(), work.Rows(), C.GoString(&errbuf[0]))
	}
	faces := make([]recognizers.Face, 0, int(n))
	for i := 0; i < int(n); i++ {
		r := d.out[i*15 : i*15+15]
		f := recognizers.Face{
			Box:   recognizers.Box{X: r[0] / scale, Y: r[1] / scale, W: r[2] / scale, H: r[3] / scale},
			Score: r[14],
		}
		for k := 0; k < 5; k++ {
			f.Landmarks[k] = recognizers.Point{X: r[4+2*k] / scale, Y: r[5+2*k] / scale}
		}
		faces = append(faces, f)
	}
	return faces, nil
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
