package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// hugePNG is a valid PNG header claiming 20000×20000 pixels, with no image data.
func hugePNG() []byte {
	var b bytes.Buffer
	b.Write([]byte("\x89PNG\r\n\x1a\n"))
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 20000)
	binary.BigEndian.PutUint32(ihdr[4:], 20000)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestAnalyzeJSONAndBadFiles(t *testing.T) {
	td := testenv.Testdata(t)
	testenv.Models(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	good, _ := os.ReadFile(filepath.Join(td, "groups/obama_and_biden.jpg"))
	files := []string{
		filepath.Join(td, "groups/obama_and_biden.jpg"),
		write("empty.jpg", nil),
		write("corrupt.jpg", append(good[:200:200], bytes.Repeat([]byte{0xff}, 300)...)),
		write("huge.png", hugePNG()),
		write("notes.txt", []byte("not an image at all")),
		write("tiny.png", tinyPNG(t)),
		filepath.Join(td, "plates/synth/scene_0_blue.jpg"),
		filepath.Join(dir, "missing.jpg"),
	}
	code, out, errs := runCmd(append([]string{"analyze", "--json"}, files...)...)
	if code != 1 || !strings.Contains(errs, "6 of 8 files failed") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(files) {
		t.Fatalf("%d lines for %d files:\n%s", len(lines), len(files), out)
	}
	type face struct {
		Box       map[string]float64 `json:"box"`
		Landmarks []map[string]float64
		Score     float64
		Quality   map[string]float64
		Liveness  float64
		Embedding []float64
	}
	type result struct {
		File   string
		Faces  []face
		Plates []struct {
			Text, Color string
			Corners     []map[string]float64
			Score       float64
		}
		Error string
	}
	var res []result
	for _, l := range lines {
		var r result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		res = append(res, r)
	}
	if len(res[0].Faces) != 3 || res[0].Error != "" || len(res[0].Faces[0].Embedding) != space.DefaultSpace.Dims || len(res[0].Faces[0].Landmarks) != 5 {
		t.Fatalf("group photo: %d faces, error %q", len(res[0].Faces), res[0].Error)
	}
	wantErr := map[int]string{1: "empty", 2: "corrupt", 3: "20000x20000", 4: "not a JPEG", 5: "too small", 7: "no such file"}
	for i, w := range wantErr {
		if !strings.Contains(res[i].Error, w) {
			t.Errorf("%s: error %q does not say %q", filepath.Base(res[i].File), res[i].Error, w)
		}
	}
	if res[5].Error == "" {
		t.Error("tiny image gave no error")
	}
	if len(res[6].Plates) == 0 || res[6].Plates[0].Text != "粤B12345" || res[6].Plates[0].Color != "blue" || len(res[6].Plates[0].Corners) != 4 {
		t.Fatalf("plate scene: %+v", res[6].Plates)
	}
}

// tinyPNG is a valid 4×4 PNG: too small for any recognizer.
func tinyPNG(t *testing.T) []byte {
	img := imageNRGBA(4, 4)
	var b bytes.Buffer
	if err := pngEncode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
