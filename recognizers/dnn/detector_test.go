package dnn

import (
	"image"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/models"
)

func TestGrowRegion(t *testing.T) {
	bounds := image.Rect(0, 0, 640, 360)
	for _, c := range []struct {
		in, want image.Rectangle
	}{
		{image.Rect(40, 50, 140, 110), image.Rect(32, 32, 160, 160)},     // 108×78 from the grid → 128×128
		{image.Rect(0, 0, 64, 64), image.Rect(0, 0, 64, 64)},             // on the grid already
		{image.Rect(600, 330, 630, 350), image.Rect(576, 288, 640, 360)}, // at the bottom: back by cells, to the edge
		{image.Rect(500, 10, 700, 50), image.Rect(448, 0, 640, 64)},      // beyond the picture: clipped first
		{image.Rect(-20, -20, 640, 400), image.Rect(0, 0, 640, 360)},     // the whole picture
	} {
		got := grow(c.in, 32, 64, bounds)
		if got != c.want {
			t.Errorf("grow(%v) = %v, want %v", c.in, got, c.want)
		}
		if !c.in.Intersect(bounds).In(got) {
			t.Errorf("grow(%v) = %v loses pixels", c.in, got)
		}
	}
}

func detectorModel(t testing.TB) string {
	mdir, _, _ := fixtures(t)
	m, err := models.Load()
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Path(mdir, "face-detector")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// regionsPicture is a test photo stretched to a 640×360 sub-stream picture, and motion regions
// of four sizes around its face.
func regionsPicture(t testing.TB) (gocv.Mat, [][]image.Rectangle) {
	_, dir, _ := fixtures(t)
	img := read(t, filepath.Join(dir, "faces/obama/1.jpg"))
	defer img.Close()
	pic := gocv.NewMat()
	gocv.Resize(img, &pic, image.Pt(640, 360), 0, 0, gocv.InterpolationArea)
	return pic, [][]image.Rectangle{
		{image.Rect(200, 20, 460, 330)},
		{image.Rect(230, 40, 430, 300)},
		{image.Rect(180, 10, 500, 350), image.Rect(20, 20, 90, 120)},
		{image.Rect(215, 25, 445, 335)},
	}
}

// regionsDetector is a new Detector and regionsPicture, closed when the test ends.
func regionsDetector(t *testing.T) (*Detector, gocv.Mat, [][]image.Rectangle) {
	d, err := NewDetector(detectorModel(t), DetectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	pic, sets := regionsPicture(t)
	t.Cleanup(func() { pic.Close() })
	return d, pic, sets
}

// A Detector keeps at most keep networks whatever sizes it is given, and finds the same face
// in regions of every size as in the whole picture.
func TestDetectorNetworkPerSize(t *testing.T) {
	d, pic, sets := regionsDetector(t)
	whole, err := d.DetectFaces(pic)
	if err != nil || len(whole) != 1 {
		t.Fatalf("whole picture: %d faces, %v", len(whole), err)
	}
	for round := 0; round < 3; round++ {
		for _, rs := range sets {
			faces, err := d.DetectRegions(pic, rs)
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) != 1 || faces[0].Box.Overlap(whole[0].Box) < 0.9 {
				t.Fatalf("regions %v: %v, whole picture %v", rs, faces, whole[0].Box)
			}
		}
	}
	if d.loads > 6 || len(d.nets) > maxNets {
		t.Errorf("%d networks loaded, %d kept: sizes are not shared", d.loads, len(d.nets))
	}
	for i := 0; i < 2*maxNets; i++ { // many sizes: the least recently used go
		if _, err := d.DetectRegions(pic, []image.Rectangle{image.Rect(0, 0, 64*(i%10+1), 64)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.nets) != maxNets {
		t.Errorf("%d networks kept, want %d", len(d.nets), maxNets)
	}
}

// DetectSized searches a door camera's whole picture at the coarse scale whatever the regions,
// in one network size, and Refine in one more: a worker does not reload networks as door
// frames' regions change (it held door frames a second in its queue when it did).
func TestDetectSizedOneNetwork(t *testing.T) {
	d, pic, sets := regionsDetector(t)
	before := d.loads
	for round := 0; round < 3; round++ {
		for _, rs := range sets {
			faces, err := d.DetectSized(pic, rs, 72)
			if err != nil || len(faces) != 1 {
				t.Fatalf("regions %v: %d faces, %v", rs, len(faces), err)
			}
			f, ok, err := d.Refine(pic, faces[0])
			if err != nil || !ok || f.Box.Overlap(faces[0].Box) < 0.5 {
				t.Fatalf("refine %v: %v %v %v", faces[0].Box, f.Box, ok, err)
			}
		}
	}
	if n := d.loads - before; n != 2 {
		t.Errorf("%d networks loaded for door frames, want 2 (the coarse picture's, the refining window's)", n)
	}
}

// BenchmarkDetectRegionSizes: four region sizes in turn on a 640×360 sub-stream picture, as a
// busy camera's motion gives them (large: a face up close; small: a passer-by's head); "one-network" is the earlier detector (one network re-planned
// at every size, regions rounded to the 32 px grid only).
func BenchmarkDetectRegionSizes(b *testing.B) {
	model := detectorModel(b)
	pic, sets := regionsPicture(b)
	defer pic.Close()
	small := [][]image.Rectangle{ // a passer-by's head and shoulders
		{image.Rect(250, 60, 330, 160)}, {image.Rect(260, 70, 380, 190)}, {image.Rect(240, 50, 340, 150)}, {image.Rect(230, 40, 390, 220)},
	}
	for _, c := range []struct {
		name       string
		keep, step int
		sets       [][]image.Rectangle
	}{{"large/one-network", 1, 32, sets}, {"large/per-size", maxNets, regionStep, sets},
		{"small/one-network", 1, 32, small}, {"small/per-size", maxNets, regionStep, small}} {
		b.Run(c.name, func(b *testing.B) {
			SetThreads(1)
			d, err := NewDetector(model, DetectorOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			d.keep, d.step = c.keep, c.step
			for i := 0; b.Loop(); i++ {
				if _, err := d.DetectRegions(pic, c.sets[i%len(c.sets)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
