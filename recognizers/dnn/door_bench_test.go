package dnn

import (
	"image"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
)

// BenchmarkDoorFrame: a door camera's frame, step by step, one core: a resident up close (a
// 400 px face on the 1280×720 main picture), found on the 640×360 sub-stream and described on
// the main picture: detection, the embedding (with its alignment), liveness (two networks),
// quality.
func BenchmarkDoorFrame(b *testing.B) {
	SetThreads(1)
	defer SetThreads(0)
	mdir, dir, _ := fixtures(b)
	f, err := NewFaces(mdir, DetectorOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	img := read(b, filepath.Join(dir, "faces/obama/1.jpg"))
	defer img.Close()
	main := gocv.NewMatWithSize(720, 1280, gocv.MatTypeCV8UC3)
	defer main.Close()
	side := 700
	big := gocv.NewMat()
	defer big.Close()
	gocv.Resize(img, &big, image.Pt(img.Cols()*side/img.Rows(), side), 0, 0, gocv.InterpolationArea)
	roi := main.Region(image.Rect(300, 10, 300+big.Cols(), 10+side))
	big.CopyTo(&roi)
	roi.Close()
	sub := gocv.NewMat()
	defer sub.Close()
	gocv.Resize(main, &sub, image.Pt(640, 360), 0, 0, gocv.InterpolationArea)
	faces, err := f.DetectFaces(sub)
	if err != nil || len(faces) == 0 {
		b.Fatalf("no face on the sub-stream picture: %v", err)
	}
	face := faces[Main(faces)]
	mf := face
	mf.Box = recognizers.Box{X: face.Box.X * 2, Y: face.Box.Y * 2, W: face.Box.W * 2, H: face.Box.H * 2}
	for i := range mf.Landmarks {
		mf.Landmarks[i] = recognizers.Point{X: face.Landmarks[i].X * 2, Y: face.Landmarks[i].Y * 2}
	}
	b.Logf("face %.0f px on the main picture", mf.Box.H)
	b.Run("detect", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.DetectFaces(sub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("detect-sized", func(b *testing.B) { // a door's faces of a fifth of the height and up, refined on the main picture
		for b.Loop() {
			fs, err := f.DetectSized(sub, nil, 72)
			if err != nil || len(fs) == 0 {
				b.Fatalf("%d faces, %v", len(fs), err)
			}
			fs[0].Box = recognizers.Box{X: fs[0].Box.X * 2, Y: fs[0].Box.Y * 2, W: fs[0].Box.W * 2, H: fs[0].Box.H * 2}
			if _, ok, err := f.Refine(main, fs[0]); !ok || err != nil {
				b.Fatalf("refine: %v %v", ok, err)
			}
		}
	})
	b.Run("embed", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.Embed(main, mf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("liveness", func(b *testing.B) {
		for b.Loop() {
			if _, err := f.Liveness.Liveness(main, mf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("quality", func(b *testing.B) {
		for b.Loop() {
			recognizers.Assess(main, mf)
		}
	})
}
