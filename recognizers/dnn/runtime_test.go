package dnn

import (
	"image"
	"math"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/testkit/ortenv"
	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/recognizers"
)

func bothRuntimes(t *testing.T) (cv, rt *Faces, dir string, rows []testdata.Row) {
	t.Helper()
	ortenv.Load(t)
	mdir, dir, rows := fixtures(t)
	var err error
	if cv, err = NewFaces(mdir, DetectorOptions{Runtime: OpenCV}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cv.Close)
	if rt, err = NewFaces(mdir, DetectorOptions{Runtime: ONNXRuntime}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	if rt.Detector.rt == nil || rt.Embedder.net.rt == nil || cv.Detector.rt != nil || cv.Embedder.net.rt != nil {
		t.Fatal("the runtimes asked for are not the ones running")
	}
	// Liveness runs on OpenCV in either (it is slower on ONNX Runtime); its ONNX Runtime
	// networks are compared all the same.
	rt.Liveness.Close()
	rt.Liveness = ortLiveness(t, mdir)
	return cv, rt, dir, rows
}

// ortLiveness loads the liveness networks on ONNX Runtime.
func ortLiveness(t testing.TB, mdir string) *Liveness {
	t.Helper()
	m, err := models.Load()
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := m.Path(mdir, "liveness-v2")
	v1se, _ := m.Path(mdir, "liveness-v1se")
	l, err := NewLivenessOn(ONNXRuntime, v2, v1se)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func near(a, b recognizers.Face, px float32) bool {
	d := func(x, y float32) bool { return float32(math.Abs(float64(x-y))) <= px }
	if !d(a.Box.X, b.Box.X) || !d(a.Box.Y, b.Box.Y) || !d(a.Box.W, b.Box.W) || !d(a.Box.H, b.Box.H) {
		return false
	}
	for k := range a.Landmarks {
		if !d(a.Landmarks[k].X, b.Landmarks[k].X) || !d(a.Landmarks[k].Y, b.Landmarks[k].Y) {
			return false
		}
	}
	return true
}

// TestRuntimesAgree: on every test photo (faces, groups, pictures with no face), ONNX Runtime
// finds the faces OpenCV finds, in the same places (boxes and landmarks within half a pixel),
// their descriptions are the same vectors (cosine ≥ 0.9999) and their liveness the same.
func TestRuntimesAgree(t *testing.T) {
	cv, rt, dir, rows := bothRuntimes(t)
	photos, faces := 0, 0
	for _, r := range rows {
		if r.Kind != "face" && r.Kind != "group" && r.Kind != "nonface" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		a, err := cv.DetectFaces(img)
		if err != nil {
			t.Fatal(err)
		}
		b, err := rt.DetectFaces(img)
		if err != nil {
			t.Fatal(err)
		}
		photos++
		if len(a) != len(b) {
			t.Errorf("%s: OpenCV %d faces, ONNX Runtime %d", r.File, len(a), len(b))
			img.Close()
			continue
		}
		for i := range a {
			if !near(a[i], b[i], 0.5) || math.Abs(float64(a[i].Score-b[i].Score)) > 0.005 {
				t.Errorf("%s face %d: OpenCV %+v, ONNX Runtime %+v", r.File, i, a[i], b[i])
				continue
			}
			ea, err := cv.Embed(img, a[i])
			if err != nil {
				t.Fatal(err)
			}
			eb, err := rt.Embed(img, a[i])
			if err != nil {
				t.Fatal(err)
			}
			if c := cosine(ea, eb); c < 0.9999 {
				t.Errorf("%s face %d: the descriptions differ (cosine %.6f)", r.File, i, c)
			}
			la, err := cv.Liveness.Liveness(img, a[i])
			if err != nil {
				t.Fatal(err)
			}
			lb, err := rt.Liveness.Liveness(img, a[i])
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(float64(la-lb)) > 0.001 {
				t.Errorf("%s face %d: liveness %.4f against %.4f", r.File, i, la, lb)
			}
			faces++
		}
		// Regions and the coarse door search go through the same network at other sizes.
		w, h := img.Cols(), img.Rows()
		ra, err := cv.DetectRegions(img, []image.Rectangle{image.Rect(0, 0, w/2+40, h), image.Rect(w/3, h/4, w, h)})
		if err != nil {
			t.Fatal(err)
		}
		rb, err := rt.DetectRegions(img, []image.Rectangle{image.Rect(0, 0, w/2+40, h), image.Rect(w/3, h/4, w, h)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ra) != len(rb) {
			t.Errorf("%s regions: OpenCV %d faces, ONNX Runtime %d", r.File, len(ra), len(rb))
		} else {
			for i := range ra {
				if !near(ra[i], rb[i], 0.5) {
					t.Errorf("%s region face %d: OpenCV %+v, ONNX Runtime %+v", r.File, i, ra[i], rb[i])
				}
			}
		}
		img.Close()
	}
	t.Logf("%d photos, %d faces: the same on both runtimes", photos, faces)
	if photos < 60 || faces < 60 {
		t.Fatalf("only %d photos and %d faces compared", photos, faces)
	}
}

func cosine(a, b recognizers.Embedding) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// BenchmarkRuntimes: each network's step on OpenCV and on ONNX Runtime in turn, one core, on
// the test photos: YuNet on a 640×360 sub-stream picture, on a passer-by's 192×192 region and
// on the refine window; the embedding; liveness (two networks); a plate scene read (detector,
// colour, reader). Reports ms a step on each
// and the ratio (OpenCV's time over ONNX Runtime's).
func BenchmarkRuntimes(b *testing.B) {
	SetThreads(1)
	defer SetThreads(0)
	ortenv.Load(b)
	mdir, dir, _ := fixtures(b)
	var fs [2]*Faces
	for i, rt := range []Runtime{OpenCV, ONNXRuntime} {
		f, err := NewFaces(mdir, DetectorOptions{Runtime: rt})
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		fs[i] = f
	}
	fs[1].Liveness.Close()
	fs[1].Liveness = ortLiveness(b, mdir)
	img := read(b, filepath.Join(dir, "groups/two_people.jpg"))
	defer img.Close()
	sub := gocv.NewMat()
	defer sub.Close()
	gocv.Resize(img, &sub, image.Pt(640, 360), 0, 0, gocv.InterpolationArea)
	faces, err := fs[0].DetectFaces(sub)
	if err != nil || len(faces) == 0 {
		b.Fatalf("no face: %v", err)
	}
	face := faces[0]
	car := read(b, filepath.Join(dir, "plates/synth/scene_1_blue.jpg"))
	defer car.Close()
	plates := map[*Faces]*Plates{}
	for i, rt := range []Runtime{OpenCV, ONNXRuntime} {
		p, err := NewPlatesOn(rt, mdir)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		plates[fs[i]] = p
	}
	cx, cy := int(face.Box.X+face.Box.W/2), int(face.Box.Y+face.Box.H/2)
	region := []image.Rectangle{image.Rect(cx-96, cy-96, cx+96, cy+96)}
	steps := []struct {
		name string
		fn   func(f *Faces) error
	}{
		{"detect-640x360", func(f *Faces) error { _, err := f.DetectFaces(sub); return err }},
		{"detect-region", func(f *Faces) error { _, err := f.DetectRegions(sub, region); return err }},
		{"refine", func(f *Faces) error { _, _, err := f.Refine(sub, face); return err }},
		{"embed", func(f *Faces) error { _, err := f.Embed(sub, face); return err }},
		{"liveness", func(f *Faces) error { _, err := f.Liveness.Liveness(sub, face); return err }},
		{"plates", func(f *Faces) error { _, err := plates[f].Read(car); return err }},
	}
	for _, st := range steps {
		b.Run(st.name, func(b *testing.B) {
			var took [2]time.Duration
			n := 0
			for b.Loop() {
				for i, f := range fs {
					t0 := time.Now()
					if err := st.fn(f); err != nil {
						b.Fatal(err)
					}
					took[i] += time.Since(t0)
				}
				n++
			}
			b.ReportMetric(float64(took[0].Microseconds())/1000/float64(n), "opencv-ms")
			b.ReportMetric(float64(took[1].Microseconds())/1000/float64(n), "ort-ms")
			b.ReportMetric(float64(took[0])/float64(took[1]), "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestPlateRuntimesAgree: the real and synthetic plate photos are read the same on both
// runtimes: the same plates, texts and colours, boxes within a pixel.
func TestPlateRuntimesAgree(t *testing.T) {
	ortenv.Load(t)
	mdir, dir, rows := fixtures(t)
	cv, err := NewPlatesOn(OpenCV, mdir)
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	rt, err := NewPlatesOn(ONNXRuntime, mdir)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if rt.det.rt == nil || cv.det.rt != nil {
		t.Fatal("the runtimes asked for are not the ones running")
	}
	n, same := 0, 0
	for _, r := range rows {
		if r.Kind != "plate" && r.Kind != "plate_synth" && r.Kind != "nonface" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		a, err := cv.Read(img)
		if err != nil {
			t.Fatal(err)
		}
		b, err := rt.Read(img)
		if err != nil {
			t.Fatal(err)
		}
		img.Close()
		n++
		if len(a) != len(b) {
			t.Errorf("%s: OpenCV %v, ONNX Runtime %v", r.File, texts(a), texts(b))
			continue
		}
		for i := range a {
			d := func(x, y float32) bool { return math.Abs(float64(x-y)) <= 1 }
			if a[i].Text != b[i].Text || a[i].Color != b[i].Color || !d(a[i].Box.X, b[i].Box.X) || !d(a[i].Box.Y, b[i].Box.Y) || !d(a[i].Box.W, b[i].Box.W) || !d(a[i].Box.H, b[i].Box.H) {
				t.Errorf("%s plate %d: OpenCV %q %s %+v, ONNX Runtime %q %s %+v", r.File, i, a[i].Text, a[i].Color, a[i].Box, b[i].Text, b[i].Color, b[i].Box)
			}
			if a[i].Text != "" {
				same++
			}
		}
	}
	t.Logf("%d photos, %d plates read the same on both runtimes", n, same)
	if n < 30 || same < 25 {
		t.Fatalf("only %d photos and %d plates compared", n, same)
	}
}
