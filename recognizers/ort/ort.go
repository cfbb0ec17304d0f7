// Package ort runs ONNX models with ONNX Runtime's C library, opened at run time (dlopen), so
// vigil builds and runs without it and uses it only where a site installs it
// (pipeline.onnxruntime; scripts/fetch-onnxruntime.sh puts the library from npm's
// onnxruntime-node in the user's cache). On one core it runs YuNet 2.9×, the face embedder
// about as fast and the plate models 3.4× faster than OpenCV 4.6's DNN module (BenchmarkRuntimes in
// recognizers/dnn).
//
// Every session runs on its caller's thread (one intra-op thread): vigil's workers and CPU slots
// decide what runs where, as with OpenCV.
package ort

// #cgo LDFLAGS: -ldl
// #include <stdlib.h>
// #include "ort.h"
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

// Env is the environment variable naming the library when no configuration does.
const Env = "VIGIL_ONNXRUNTIME"

// Release is the ONNX Runtime release scripts/fetch-onnxruntime.sh installs.
const Release = "1.30.0"

var (
	mu     sync.Mutex
	loaded string
)

// LibrarySHA256 is the sha256 of Release's libonnxruntime.so.1 for Linux x86-64, as
// scripts/fetch-onnxruntime.sh installs it.
const LibrarySHA256 = "ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23"

// Cached returns the library scripts/fetch-onnxruntime.sh installed in the user's cache
// (vigil/onnxruntime-<Release>/libonnxruntime.so.1), "" when there is none. A file there whose
// sha256 is not LibrarySHA256 is an error: nothing that merely sits in a cache folder is
// loaded into vigil unless it is the verified release (a library named in the configuration is
// the operator's choice and is not checked).
func Cached() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", nil
	}
	p := filepath.Join(dir, "vigil", "onnxruntime-"+Release, "libonnxruntime.so.1")
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ort: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("ort: reading %s: %w", p, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != LibrarySHA256 {
		return "", fmt.Errorf("ort: %s is not ONNX Runtime %s as verified (sha256 %s); run scripts/fetch-onnxruntime.sh again", p, Release, sum)
	}
	return p, nil
}

// Default is the library the tests load: $VIGIL_ONNXRUNTIME, else Cached's; "" if neither.
func Default() string {
	if p := os.Getenv(Env); p != "" && p != "off" {
		return p
	}
	p, _ := Cached()
	return p
}

// Load opens the library at path, once per process; loading a second, different path fails.
func Load(path string) error {
	mu.Lock()
	defer mu.Unlock()
	if loaded != "" {
		if loaded != path {
			return fmt.Errorf("ort: %s is loaded; cannot load %s too", loaded, path)
		}
		return nil
	}
	if path == "" {
		return errors.New("ort: no library named")
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var errbuf [512]C.char
	if C.vigil_ort_load(cpath, &errbuf[0], C.int(len(errbuf))) != 0 {
		return fmt.Errorf("ort: loading %s: %s", path, C.GoString(&errbuf[0]))
	}
	loaded = path
	return nil
}

// Loaded reports whether a library is loaded.
func Loaded() bool {
	mu.Lock()
	defer mu.Unlock()
	return loaded != ""
}

// Version is the loaded library's version ("" when none is).
func Version() string { return C.GoString(C.vigil_ort_version()) }

// Session is one model, for one goroutine at a time.
type Session struct {
	h      unsafe.Pointer
	input  *C.char
	names  **C.char // C array of the output names
	nout   int
	values []unsafe.Pointer
	data   []*C.float
	counts []C.size_t
	shape  []C.int64_t
}

// NewSession builds a session from an ONNX model in memory with one float input and the named
// float outputs.
func NewSession(model []byte, input string, outputs ...string) (*Session, error) {
	if !Loaded() {
		return nil, errors.New("ort: ONNX Runtime is not loaded")
	}
	if len(model) == 0 || len(outputs) == 0 {
		return nil, errors.New("ort: a model and at least one output are needed")
	}
	var errbuf [512]C.char
	cm := C.CBytes(model)
	defer C.free(cm)
	h := C.vigil_ort_session(cm, C.size_t(len(model)), &errbuf[0], C.int(len(errbuf)))
	if h == nil {
		return nil, fmt.Errorf("ort: %s", C.GoString(&errbuf[0]))
	}
	s := &Session{h: h, input: C.CString(input), nout: len(outputs),
		values: make([]unsafe.Pointer, len(outputs)), data: make([]*C.float, len(outputs)), counts: make([]C.size_t, len(outputs))}
	s.names = (**C.char)(C.malloc(C.size_t(len(outputs)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	names := unsafe.Slice(s.names, len(outputs))
	for i, o := range outputs {
		names[i] = C.CString(o)
	}
	return s, nil
}

// Run runs the model on in, of the given shape, and copies output i into dst[i], grown as
// needed; it returns the outputs.
func (s *Session) Run(in []float32, shape []int64, dst [][]float32) ([][]float32, error) {
	if s.h == nil {
		return nil, errors.New("ort: session closed")
	}
	n := int64(1)
	s.shape = s.shape[:0]
	for _, d := range shape {
		n *= d
		s.shape = append(s.shape, C.int64_t(d))
	}
	if n != int64(len(in)) || n == 0 {
		return nil, fmt.Errorf("ort: input of %d values for shape %v", len(in), shape)
	}
	var errbuf [512]C.char
	rc := C.vigil_ort_run(s.h, s.input, (*C.float)(unsafe.Pointer(&in[0])), &s.shape[0], C.size_t(len(s.shape)),
		s.names, C.size_t(s.nout), (*unsafe.Pointer)(unsafe.Pointer(&s.values[0])), &s.data[0], &s.counts[0],
		&errbuf[0], C.int(len(errbuf)))
	if rc != 0 {
		return nil, fmt.Errorf("ort: run: %s", C.GoString(&errbuf[0]))
	}
	if len(dst) < s.nout {
		dst = append(dst, make([][]float32, s.nout-len(dst))...)
	}
	for i := 0; i < s.nout; i++ {
		c := int(s.counts[i])
		if cap(dst[i]) < c {
			dst[i] = make([]float32, c)
		}
		dst[i] = dst[i][:c]
		if c > 0 {
			copy(dst[i], unsafe.Slice((*float32)(unsafe.Pointer(s.data[i])), c))
		}
		C.vigil_ort_value_free(s.values[i])
		s.values[i] = nil
	}
	return dst[:s.nout], nil
}

// Close frees the session.
func (s *Session) Close() {
	if s.h == nil {
		return
	}
	C.vigil_ort_session_free(s.h)
	s.h = nil
	C.free(unsafe.Pointer(s.input))
	for _, p := range unsafe.Slice(s.names, s.nout) {
		C.free(unsafe.Pointer(p))
	}
	C.free(unsafe.Pointer(s.names))
}
