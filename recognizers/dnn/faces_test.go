package dnn

import (
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// fixtures locates the shared models and test photos, skipping when they are not here.
func fixtures(t testing.TB) (mdir, dir string, rows []testdata.Row) {
	t.Helper()
	dir, mdir = testenv.Testdata(t), testenv.Models(t)
	var err error
	if rows, err = testdata.Load(dir); err != nil {
		t.Fatal(err)
	}
	return mdir, dir, rows
}

func setup(t testing.TB) (*Faces, string, []testdata.Row) {
	t.Helper()
	mdir, dir, rows := fixtures(t)
	f, err := NewFaces(mdir, DetectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, dir, rows
}

func read(t testing.TB, path string) gocv.Mat {
	t.Helper()
	img := gocv.IMRead(path, gocv.IMReadColor)
	if img.Empty() {
		t.Fatalf("cannot read %s", path)
	}
	return img
}

func TestFaceCounts(t *testing.T) {
	f, dir, rows := setup(t)
	for _, r := range rows {
		if r.Kind != "group" && r.Kind != "nonface" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		faces, err := f.DetectFaces(img)
		img.Close()
		if err != nil {
			t.Errorf("%s: %v", r.File, err)
			continue
		}
		want := r.ExpectedFaces
		ok := len(faces) == want
		if strings.HasPrefix(r.Expected, "stress") {
			ok = len(faces) >= 4 // labels.csv: YuNet finds 4 of the 8 large, partial faces
		}
		if !ok {
			t.Errorf("%s: %d faces, want %d (%s)", r.File, len(faces), want, r.Expected)
		}
	}
}

func TestLivenessSamples(t *testing.T) {
	f, dir, rows := setup(t)
	n := 0
	for _, r := range rows {
		if r.Kind != "liveness" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		faces, _ := f.DetectFaces(img)
		i := Main(faces)
		if i < 0 {
			t.Fatalf("%s: no face", r.File)
		}
		p, err := f.Liveness.Liveness(img, faces[i])
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := "spoof"
		if p >= 0.5 {
			got = "real"
		}
		if got != r.Text() {
			t.Errorf("%s: p(real)=%.3f → %s, want %s", r.File, p, got, r.Text())
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d liveness samples", n)
	}
}
