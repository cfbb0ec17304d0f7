package pipeline

import (
	"image"
	"math/rand/v2"
	"testing"
	"time"
)

// frameOf is a w×h BGR picture of one grey level with per-pixel noise of ±noise levels.
func frameOf(w, h int, grey, noise int, rng *rand.Rand) []byte {
	b := make([]byte, w*h*3)
	for i := range b {
		v := grey
		if noise > 0 {
			v += rng.IntN(2*noise+1) - noise
		}
		b[i] = byte(min(255, max(0, v)))
	}
	return b
}

func paint(b []byte, w int, r image.Rectangle, grey byte) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			p := (y*w + x) * 3
			b[p], b[p+1], b[p+2] = grey, grey, grey
		}
	}
}

// TestMotionGate: a still scene (even with sensor noise) passes nothing, a small moving thing
// passes with a region around it, a change of the whole picture or a track in progress passes
// the whole frame.
func TestMotionGate(t *testing.T) {
	const w, h = 1280, 720
	rng := rand.New(rand.NewPCG(1, 2))
	g := &motionGate{threshold: 1.5, maxIdle: 5 * time.Second}
	pts := time.Duration(0)
	next := func(b []byte, busy bool) (bool, []image.Rectangle) {
		pts += 500 * time.Millisecond
		return g.pass(b, w, h, pts, busy)
	}
	if ok, r := next(frameOf(w, h, 120, 3, rng), false); !ok || r != nil {
		t.Fatalf("first frame: %v %v, want the whole frame", ok, r)
	}
	for i := 0; i < 30; i++ { // 15 s of a still, noisy scene: the reference is refreshed, nothing runs
		if ok, _ := next(frameOf(w, h, 120+i/10, 3, rng), false); ok {
			t.Fatalf("still frame %d passed the gate", i)
		}
	}
	person := image.Rect(600, 200, 660, 330)
	moving := frameOf(w, h, 122, 3, rng)
	paint(moving, w, person, 220)
	ok, regions := next(moving, false)
	if !ok || len(regions) != 1 {
		t.Fatalf("a person walked in: %v %v, want one region", ok, regions)
	}
	if r := regions[0]; !person.In(r) || r.Dx()*r.Dy() > 12*person.Dx()*person.Dy() {
		t.Fatalf("region %v for a person at %v", r, person)
	}
	if ok, r := next(moving, true); !ok || r != nil {
		t.Fatalf("track in progress: %v %v, want the whole frame", ok, r)
	}
	if ok, r := next(frameOf(w, h, 180, 3, rng), false); !ok || r != nil {
		t.Fatalf("lights on: %v %v, want the whole frame", ok, r)
	}
	// Two people far apart: two regions.
	two := frameOf(w, h, 180, 3, rng)
	paint(two, w, image.Rect(100, 100, 160, 200), 40)
	paint(two, w, image.Rect(1000, 400, 1060, 500), 40)
	if ok, r := next(two, false); !ok || len(r) != 2 {
		t.Fatalf("two people: %v %v, want two regions", ok, r)
	}
	// A crowd: regions over half the frame are the whole frame.
	crowd := frameOf(w, h, 180, 3, rng)
	paint(crowd, w, image.Rect(0, 0, 1000, 700), 40)
	if ok, r := next(crowd, false); !ok || r != nil {
		t.Fatalf("crowd: %v %v, want the whole frame", ok, r)
	}
	off := &motionGate{threshold: -1}
	if ok, r := off.pass(frameOf(w, h, 1, 0, rng), w, h, 0, false); !ok || r != nil {
		t.Fatal("a disabled gate held a frame")
	}
}
