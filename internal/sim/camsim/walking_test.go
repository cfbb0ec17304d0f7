package camsim

import (
	"fmt"
	"image"
	"image/draw"
	"math/rand/v2"
	"testing"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// TestWalkingPhotosAreFaces: every photo --activity site walks past is, drawn as camsim draws a
// passer-by, a face the detector finds whole, near and far: the ground truth's passages are
// passages a camera could see.
func TestWalkingPhotosAreFaces(t *testing.T) {
	lib := testLibrary(t)
	faces, err := dnn.NewFaces(testenv.Models(t), dnn.DetectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer faces.Close()
	const w, h = 640, 360 // a sub-stream: where detection runs
	bg := background(w, h, rand.New(rand.NewPCG(1, 2)))
	n := 0
	for _, id := range lib.Identities() {
		for _, photo := range lib.Walking[id] {
			for _, size := range []int{20, 60, 180} {
				sp, err := lib.faceSprite(Event{Kind: "face", Identity: id, Photo: photo, Size: size})
				if err != nil {
					t.Fatal(err)
				}
				frame := image.NewRGBA(bg.Bounds())
				copy(frame.Pix, bg.Pix)
				at := image.Pt(w/2-sp.inner.Min.X-size/2, h/2-sp.inner.Min.Y-size/2)
				draw.DrawMask(frame, sp.img.Bounds().Add(at), sp.img, image.Point{}, sp.mask, image.Point{}, draw.Over)
				bgr := make([]byte, w*h*3)
				for i, j := 0, 0; i < len(bgr); i, j = i+3, j+4 {
					bgr[i], bgr[i+1], bgr[i+2] = frame.Pix[j+2], frame.Pix[j+1], frame.Pix[j]
				}
				m, _ := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, bgr)
				found, err := faces.DetectFaces(m)
				m.Close()
				if err != nil {
					t.Fatal(err)
				}
				ok := false
				for _, f := range found {
					cx, cy := f.Box.X+f.Box.W/2, f.Box.Y+f.Box.H/2
					ok = ok || (cx > float32(w/2-size/2) && cx < float32(w/2+size/2) && cy > float32(h/2-size) && cy < float32(h/2+size))
				}
				if !ok {
					t.Errorf("%s at %d px (on a 640x360 picture): not found (%v)", photo, size, fmt.Sprint(found))
				}
				n++
			}
		}
	}
	t.Logf("%d walking photos of %d identities, each at three sizes", n/3, len(lib.Walking))
}
