package ort_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/testkit/ortenv"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers/ort"
)

func TestIO(t *testing.T) {
	dir := testenv.Models(t)
	for file, want := range map[string][2][]string{
		"face/face_detection_yunet_2022mar.onnx":      {{"input"}, {"loc", "conf", "iou"}},
		"face/face_reidentification_retail_0095.onnx": {{"t0_0"}, {"t684_2"}},
		"liveness/minifasnet_v2_2.7_80x80.onnx":       {nil, nil},
	} {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		ins, outs, err := ort.IO(raw)
		t.Logf("%s: %v -> %v", file, ins, outs)
		if err != nil || len(ins) != 1 || len(outs) == 0 {
			t.Fatalf("%s: %v -> %v, %v", file, ins, outs, err)
		}
		if want[0] != nil && !slices.Equal(ins, want[0]) || want[1] != nil && !slices.Equal(outs, want[1]) {
			t.Fatalf("%s: %v -> %v, want %v", file, ins, outs, want)
		}
	}
}

// TestConstants: the liveness model lists its weights as inputs too; after Constants its one
// input is the picture, and the model still runs.
func TestConstants(t *testing.T) {
	ortenv.Load(t)
	raw, err := os.ReadFile(filepath.Join(testenv.Models(t), "liveness", "minifasnet_v2_2.7_80x80.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ort.Constants(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) >= len(raw) {
		t.Fatalf("nothing dropped: %d bytes, %d before", len(m), len(raw))
	}
	ins, outs, err := ort.IO(m)
	if err != nil || len(ins) != 1 || ins[0] != "input.1" || len(outs) != 1 {
		t.Fatalf("%v -> %v, %v", ins, outs, err)
	}
	s, err := ort.NewSession(m, ins[0], outs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(make([]float32, 3*80*80), []int64{1, 3, 80, 80}, nil)
	if err != nil || len(out) != 1 || len(out[0]) != 3 {
		t.Fatalf("%v, %v", out, err)
	}
}
