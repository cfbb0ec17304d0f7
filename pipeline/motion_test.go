package pipeline

import (
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
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
// passes with a region around it, a track in progress passes the region around where it was last
// seen even when nothing moved (the whole frame when the gate does not know where), a change of
// the whole picture passes the whole frame.
func TestMotionGate(t *testing.T) {
	const w, h = 1280, 720
	rng := rand.New(rand.NewPCG(1, 2))
	g := &motionGate{threshold: 1.5, maxIdle: 5 * time.Second}
	pts := time.Duration(0)
	var tracks []Frac
	next := func(b []byte, busy bool) (bool, []image.Rectangle) {
		pts += 500 * time.Millisecond
		return g.pass(b, w, h, pts, busy, tracks)
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
		t.Fatalf("track in progress, nowhere known: %v %v, want the whole frame", ok, r)
	}
	face := image.Rect(610, 200, 650, 240)
	tracks = []Frac{{610.0 / w, 200.0 / h, 650.0 / w, 240.0 / h}}
	ok, regions = next(moving, true) // standing still at the door
	if !ok || len(regions) != 1 || !face.Inset(-40).In(regions[0]) || regions[0].Dx()*regions[0].Dy() > 40*face.Dx()*face.Dy() {
		t.Fatalf("track in progress at %v, standing still: %v %v, want one region around it", face, ok, regions)
	}
	tracks = nil
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
	if ok, r := off.pass(frameOf(w, h, 1, 0, rng), w, h, 0, false, nil); !ok || r != nil {
		t.Fatal("a disabled gate held a frame")
	}
}

// TestIdleRate: a camera with an idle rate samples key frames every 0.4 s at FPS 2.5 while
// something moves or a track is in progress, and every 0.8 s (idle_fps 1.25) otherwise; a PTS
// that jumps back neither blocks sampling nor keeps the camera hot.
func TestIdleRate(t *testing.T) {
	var busy atomic.Bool
	r := newRate(Options{FPS: 2.5, IdleFPS: 1.25}, &busy)
	const gop = 400 * time.Millisecond
	sample := func(from, to time.Duration, last *time.Duration) (n int) {
		for pts := from; pts < to; pts += gop {
			if !r.tooSoon(pts, *last) {
				*last, n = pts, n+1
			}
		}
		return n
	}
	last := time.Duration(0)
	if n := sample(gop, 8*time.Second, &last); n != 9 { // 0.8 s apart, idle
		t.Fatalf("idle: %d samples in 8 s, want 9", n)
	}
	r.moved(last)
	if n := sample(last+gop, last+2*time.Second, &last); n != 4 {
		t.Fatalf("after movement: %d samples in the next 1.6 s, want 4", n)
	}
	busy.Store(true)
	if n := sample(last+gop, last+4*time.Second, &last); n != 9 {
		t.Fatalf("a track in progress: %d samples in the next 3.6 s, want 9", n)
	}
	busy.Store(false)
	if !r.tooSoon(last+gop, last) {
		t.Fatal("idle again: a key frame 0.4 s after the last was sampled")
	}
	r.moved(time.Hour)
	if r.tooSoon(time.Minute, last) || !r.idle(time.Minute) {
		t.Fatal("a PTS that jumped back kept the camera hot or blocked the sample")
	}
	if full := newRate(Options{FPS: 2.5}, &busy); full.tooSoon(gop, 0) {
		t.Fatal("without idle_fps a key frame 0.4 s later was skipped")
	}
}

// TestRestlessBlocks: a tree swaying in the wind wakes the detector only until the gate has
// learned it; then a passer-by against the still wall passes with a region around them, a
// single flickering block does not, and someone at the same spot a little later still does (a
// passer-by is not learned as background).
func TestRestlessBlocks(t *testing.T) {
	const w, h = 640, 360
	rng := rand.New(rand.NewPCG(3, 4))
	g := &motionGate{threshold: 1.5, maxIdle: 5 * time.Second}
	pts := time.Duration(0)
	frame := func(i int) []byte {
		b := frameOf(w, h, 120, 3, rng)
		sway := int(12 * math.Sin(float64(i)*0.9))
		paint(b, w, image.Rect(480+sway, 20, 600+sway, 150), 60) // the canopy
		return b
	}
	next := func(b []byte) (bool, []image.Rectangle) {
		pts += 800 * time.Millisecond
		return g.pass(b, w, h, pts, false, nil)
	}
	passed := 0
	for i := 0; i < 200; i++ {
		if ok, _ := next(frame(i)); ok && i >= 150 {
			passed++
		}
	}
	if passed > 0 {
		t.Fatalf("the tree still passes the gate after 150 samples: %d of the next 50", passed)
	}
	person := image.Rect(200, 120, 250, 260)
	for k := 0; k < 2; k++ { // the same spot twice, 10 samples apart
		for i := 0; i < 4; i++ {
			b := frame(200 + k*20 + i)
			paint(b, w, person.Add(image.Pt(8*i, 0)), 230)
			ok, r := next(b)
			if !ok || len(r) == 0 || !slices.ContainsFunc(r, func(x image.Rectangle) bool { return x.Overlaps(person.Add(image.Pt(8*i, 0))) }) {
				t.Fatalf("passer-by %d, sample %d: %v %v, want a region around them", k+1, i, ok, r)
			}
			if slices.ContainsFunc(r, func(x image.Rectangle) bool { return x.Overlaps(image.Rect(500, 40, 580, 130)) }) {
				t.Fatalf("passer-by %d, sample %d: a region %v around the tree", k+1, i, r)
			}
		}
		for i := 0; i < 16; i++ {
			next(frame(210 + k*20 + i))
		}
	}
	b := frame(300)
	paint(b, w, image.Rect(100, 300, 104, 304), 250) // one block flickers
	if ok, r := next(b); ok {
		t.Fatalf("a single flickering block passed: %v", r)
	}
}
