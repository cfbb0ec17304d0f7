package privacy

import (
	"image"
	"math"
	"testing"
)

func TestCheck(t *testing.T) {
	good := Masks{{{0, 0}, {0.5, 0}, {0.5, 0.5}}}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]Masks{
		"two points":  {{{0, 0}, {1, 1}}},
		"outside":     {{{0, 0}, {1.2, 0}, {1, 1}}},
		"NaN":         {{{0, 0}, {math.NaN(), 0}, {1, 1}}},
		"17 polygons": make(Masks, 17),
	} {
		if m.Check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSpansCoverTheRegion: a rectangle and a triangle mask exactly the pixels whose centres they
// hold; the rest of the picture is untouched.
func TestSpansCoverTheRegion(t *testing.T) {
	const w, h = 64, 48
	rect := Polygon{{0.25, 0.25}, {0.75, 0.25}, {0.75, 0.75}, {0.25, 0.75}}
	tri := Polygon{{0, 0}, {0.2, 0}, {0, 0.2}}
	p := NewPainter(Masks{rect, tri})
	pix := make([]byte, 3*w*h)
	for i := range pix {
		pix[i] = 200
	}
	p.BGR(pix, w, h, 0)
	inside := func(x, y int) bool {
		cx, cy := (float64(x)+0.5)/w, (float64(y)+0.5)/h
		inRect := cx >= 0.25 && cx < 0.75 && cy >= 0.25 && cy < 0.75
		return inRect || cx+cy < 0.2
	}
	bad := 0
	for y := range h {
		for x := range w {
			black := pix[3*(y*w+x)] == 0
			if black != inside(x, y) {
				bad++
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d pixels wrong", bad)
	}
}

func TestImageAndOverlay(t *testing.T) {
	m := Masks{{{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}}} // the left half
	src := image.NewRGBA(image.Rect(0, 0, 10, 4))
	for i := range src.Pix {
		src.Pix[i] = 255
	}
	out := NewPainter(m).Image(src).(*image.RGBA)
	if r, _, _, _ := out.At(2, 2).RGBA(); r != 0 {
		t.Fatal("the left half is not black")
	}
	if r, _, _, _ := out.At(7, 2).RGBA(); r != 0xffff {
		t.Fatal("the right half changed")
	}
	if src.Pix[0] != 255 {
		t.Fatal("the source changed")
	}
	ov := m.Overlay(10, 4)
	if ov.NRGBAAt(1, 1).A != 255 || ov.NRGBAAt(8, 1).A != 0 {
		t.Fatal("overlay")
	}
}
