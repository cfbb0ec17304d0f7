package ort_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/testkit/ortenv"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers/ort"
)

func TestLoadErrors(t *testing.T) {
	if err := ort.Load(""); err == nil && !ort.Loaded() {
		t.Fatal("loading no library succeeded")
	}
	if !ort.Loaded() {
		err := ort.Load(filepath.Join(t.TempDir(), "nothing.so"))
		if err == nil || !strings.Contains(err.Error(), "nothing.so") {
			t.Fatalf("loading a missing library: %v", err)
		}
		if ort.Loaded() {
			t.Fatal("a failed load counts as loaded")
		}
	}
}

// TestYuNetAnySize runs the face detector, whose file fixes its input at 160×120, at the sizes
// vigil gives it once Dynamic has freed height and width: one row per prior (three sizes at
// stride 8, two at 16 and 32, three at 64).
func TestYuNetAnySize(t *testing.T) {
	ortenv.Load(t)
	if v := ort.Version(); !strings.HasPrefix(v, "1.") {
		t.Fatalf("version %q", v)
	}
	raw, err := os.ReadFile(filepath.Join(testenv.Models(t), "face", "face_detection_yunet_2022mar.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	model, err := ort.Dynamic(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(model, "input", "loc", "conf", "iou")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out [][]float32
	for _, sz := range [][2]int{{160, 120}, {320, 192}, {640, 352}, {96, 64}} {
		w, h := sz[0], sz[1]
		if out, err = s.Run(make([]float32, 3*w*h), []int64{1, 3, int64(h), int64(w)}, out); err != nil {
			t.Fatalf("%dx%d: %v", w, h, err)
		}
		priors := 0
		fw, fh := (w+1)/2/2, (h+1)/2/2
		for _, k := range []int{3, 2, 2, 3} {
			fw, fh = fw/2, fh/2
			priors += fw * fh * k
		}
		if len(out) != 3 || len(out[0]) != priors*14 || len(out[1]) != priors*2 || len(out[2]) != priors {
			t.Fatalf("%dx%d: outputs %d, %d, %d values; want %d priors", w, h, len(out[0]), len(out[1]), len(out[2]), priors)
		}
	}
	if _, err := s.Run(make([]float32, 10), []int64{1, 3, 120, 160}, out); err == nil {
		t.Fatal("a short input ran")
	}
	if _, err := s.Run(make([]float32, 3*4*4), []int64{1, 4, 2, 6}, out); err == nil {
		t.Fatal("four channels ran")
	}
	if _, err := ort.NewSession([]byte("not a model"), "input", "loc"); err == nil {
		t.Fatal("a corrupt model loaded")
	}
}

func TestDynamicRefusesNonModels(t *testing.T) {
	if _, err := ort.Dynamic([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Fatal("garbage rewritten")
	}
	if _, err := ort.Dynamic(nil); err == nil {
		t.Fatal("an empty file rewritten")
	}
}

// TestCachedVerifies: a library in the cache folder that is not the verified release is not
// offered for loading.
func TestCachedVerifies(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if p, err := ort.Cached(); p != "" || err != nil {
		t.Fatalf("an empty cache offered %q, %v", p, err)
	}
	dir := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "vigil", "onnxruntime-"+ort.Release)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "libonnxruntime.so.1"), []byte("\x7fELF not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ort.Cached()
	if p != "" || err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("a library of the wrong sha256 offered: %q, %v", p, err)
	}
}
