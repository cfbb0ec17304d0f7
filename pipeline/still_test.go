package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// TestStillnessDecides: the quiet level is learned from intervals the gate found still; a key
// frame is skipped only after that, while the scene stays still, and never past the refresh, after
// movement, with a track in progress, or on a camera whose quiet level is high (background
// motion).
func TestStillnessDecides(t *testing.T) {
	const gop = 400 * time.Millisecond
	// A constant bit rate stream of 2,000 bytes a picture: slices, padded with filler.
	pic := func(n int) *streams.Unit {
		return &streams.Unit{Codec: streams.H264, NALUs: [][]byte{{0x09, 0xf0}, append([]byte{0x41}, make([]byte, n-1)...), append([]byte{0x0c}, make([]byte, 1998-n)...)}}
	}
	keyUnit := &streams.Unit{Codec: streams.H264, Key: true, NALUs: [][]byte{{0x09, 0x10}, append([]byte{0x65}, make([]byte, 1997)...)}}
	interval := func(s *stillness, n int) {
		for range 9 {
			s.add(pic(n))
		}
		s.add(keyUnit)
	}
	s := newStillness(streams.H264, 5*time.Second)
	pts := time.Duration(0)
	key := func(busy bool) bool { pts += gop; return s.skip(pts, busy) }
	// Learning: every key frame decoded.
	for i := range stillLearn {
		interval(s, 20)
		if key(false) {
			t.Fatalf("key frame %d skipped while learning", i)
		}
		s.gated(pts, false)
	}
	if s.quiet != 20 {
		t.Fatalf("quiet level %.1f bytes a picture, want 20 (filler and delimiters left out)", s.quiet)
	}
	interval(s, 40)
	if !key(false) {
		t.Fatal("a still interval's key frame was decoded")
	}
	interval(s, 2*20+stillSlack+1)
	if key(false) {
		t.Fatal("an interval above the bar was skipped")
	}
	s.gated(pts, true) // something moved
	interval(s, 20)
	if key(false) {
		t.Fatal("skipped right after movement")
	}
	s.gated(pts, false)
	interval(s, 20)
	if key(true) {
		t.Fatal("skipped with a track in progress")
	}
	s.gated(pts, false)
	skipped := 0
	for range 20 {
		interval(s, 20)
		if key(false) {
			skipped++
			continue
		}
		s.gated(pts, false)
	}
	// 20 key frames 0.4 s apart: one decoded every 5 s at least.
	if skipped < 15 || skipped > 19 {
		t.Fatalf("%d of 20 still key frames skipped; want all but one every 5 s", skipped)
	}

	// A scene whose background moves: its quiet level is over the ceiling (an eighth of the
	// stream's 2,000 bytes a picture), nothing is skipped.
	busy := newStillness(streams.H264, 5*time.Second)
	for i := range 20 {
		interval(busy, 2000/8+20)
		if busy.skip(time.Duration(i)*gop, false) {
			t.Fatalf("key frame %d of a restless scene skipped", i)
		}
		busy.gated(time.Duration(i)*gop, false)
	}
}

// TestStillKeyFramesNotDecoded: door units looking at an empty entrance for 4.5 s of each 8 s
// before someone walks up leave key frames undecoded while it is empty, and still find and name
// the resident on every loop: the coded pictures show the movement before the next key frame.
func TestStillKeyFramesNotDecoded(t *testing.T) {
	td, mdir := testenv.Testdata(t), testenv.Models(t)
	lib, err := camsim.LoadLibrary(td)
	if err != nil {
		t.Fatal(err)
	}
	evs := []camsim.Event{{Kind: "face", Identity: "obama", Photo: "faces/obama/2.jpg", Start: 4.5, Duration: 3, Size: 100, Y: 0.32}}
	if err := lib.Resolve(&evs[0]); err != nil {
		t.Fatal(err)
	}
	clip, err := camsim.BuildClip(context.Background(), lib, camsim.Params{Width: 640, Height: 360, FPS: 20, GOP: 0.25, Bitrate: 400, Seconds: 8, Look: &camsim.Look{Place: camsim.PlaceDoor}},
		evs, 5, os.TempDir()+"/vigil-test-clips")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const cams = 2
	addr := startFleet(t, clip, cams, 0, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewMetrics(nil)
	gal := enrolledGallery(t, td, mdir)
	pub := &collector{}
	pl := New(Config{Faces: facePool(t, mdir, 1, 8, m, log), Gallery: gal, Publisher: pub, Metrics: m, Log: log})
	pl.Start(ctx)
	pool := rtsp.NewPool(log)
	defer pool.Close()
	for i := 1; i <= cams; i++ {
		s, _ := pool.Add(rtsp.Config{ID: fmt.Sprintf("cam%03d", i), URL: fmt.Sprintf("rtsp://%s/cam/%03d", addr, i)})
		if err := pl.AddCamera(fmt.Sprintf("cam%03d", i), s.Stream(), Options{KeyframesOnly: true, FPS: 4, Faces: true}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(25 * time.Second) // three loops of the clip
	stats := map[string]CameraStats{}
	for i := 1; i <= cams; i++ {
		cam := fmt.Sprintf("cam%03d", i)
		stats[cam], _ = pl.Stats(cam)
	}
	cancel()
	pl.Wait()
	named := map[string]int{}
	for _, e := range pub.all() {
		if e.Match != nil && e.Match.PersonID == "obama" {
			named[e.Camera]++
		}
	}
	for i := 1; i <= cams; i++ {
		cam := fmt.Sprintf("cam%03d", i)
		st := stats[cam]
		t.Logf("%s: %d key frames decoded (%d held by the gate), %d not decoded (still), obama named %d times", cam, st.Sampled, st.Gated, st.Still, named[cam])
		// 4 key frames a second. camsim encodes each loop of the clip from a cold start, and its
		// rate control spends the first ~2.5 s refining the still picture (its coded pictures
		// cost as much as a passer-by's): about 1.75 s of each 8 s loop looks still in the
		// coded stream, a fifth of the key frames.
		if st.Still < (st.Sampled+st.Still)/10 {
			t.Errorf("%s: %d of %d key frames not decoded; want a tenth or more", cam, st.Still, st.Sampled+st.Still)
		}
		if named[cam] < 2 {
			t.Errorf("%s: the passer-by was named %d times in three loops of the clip; want 2 or 3", cam, named[cam])
		}
	}
}
