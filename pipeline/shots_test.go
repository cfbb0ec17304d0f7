package pipeline

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/clips"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/decode"
)

// TestShotBufferBounded: the main stream's buffer keeps the units since the key frame before
// last, and never more than its unit and byte budgets, whatever a camera sends.
func TestShotBufferBounded(t *testing.T) {
	st := &shotState{decAt: -1}
	unit := func(key bool, size int) *streams.Unit {
		return &streams.Unit{Key: key, NALUs: [][]byte{make([]byte, size)}, Arrival: time.Now()}
	}
	for g := 0; g < 5; g++ { // five GOPs of 10 frames
		for i := 0; i < 10; i++ {
			st.add(unit(i == 0, 1000))
		}
	}
	if len(st.buf) != 20 || !st.buf[0].Key || st.base != 30 || st.bytes != 20*1000 {
		t.Fatalf("kept %d units from %d (%d bytes), want the last two GOPs", len(st.buf), st.base, st.bytes)
	}
	for i := 0; i < 1000; i++ { // a camera that never sends another key frame
		st.add(unit(false, 1000))
	}
	if len(st.buf) > maxShotUnits {
		t.Fatalf("%d units kept", len(st.buf))
	}
	for i := 0; i < 40; i++ { // huge frames
		st.add(unit(false, 1<<20))
	}
	if st.bytes > maxShotBytes || len(st.buf) == 0 {
		t.Fatalf("%d bytes in %d units kept", st.bytes, len(st.buf))
	}
}

// shotClip is the small test clip's units as the main stream delivers them, 40 ms apart.
func shotClip(t *testing.T) []*streams.Unit {
	t.Helper()
	us := clips.Units(clips.Small(t), time.Now())
	if len(us) < 40 || !us[0].Key || us[1].PTS != 40*time.Millisecond {
		t.Fatalf("clip of %d units", len(us))
	}
	return us
}

// TestShotsDecodeAhead: after a door camera's shot the main stream is decoded as it arrives, up
// to a little before the moment the camera's analysis has reached, so that the next door shot
// decodes a frame or two instead of the GOP's frames up to it; the picture is the same; a
// street camera's shot (another lane) decodes nothing ahead, nor a door camera's once every
// face in view there has had its answer (shots.decided).
func TestShotsDecodeAhead(t *testing.T) {
	us := shotClip(t)
	key2 := -1 // the second key frame
	for i := 1; i < len(us) && key2 < 0; i++ {
		if us[i].Key {
			key2 = i
		}
	}
	if key2 < 8 || key2+12 > len(us) {
		t.Fatalf("second key frame at unit %d of %d", key2, len(us))
	}
	decoded := func(s *shots) int { return int(testutilValue(s.metrics.mainDecoded.WithLabelValues(s.camera))) }
	// play feeds units [from, to) to st, the analysis reaching each as it arrives, and decodes
	// ahead as run does.
	play := func(s *shots, st *shotState, from, to int) {
		for i := from; i < to; i++ {
			st.add(us[i])
			s.reached(momentOf(us[i]))
			for s.stepAhead(st) {
			}
		}
	}
	want, err := decode.New(streams.H264, decode.Options{Mode: decode.All})
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	var pics []*decode.Frame
	for _, u := range us[:key2+12] {
		f, err := want.Decode(u)
		if err != nil || f == nil {
			t.Fatalf("reference decode: %v", err)
		}
		c := *f
		c.BGR = append([]byte(nil), f.BGR...)
		pics = append(pics, &c)
	}
	for _, c := range []struct {
		name    string
		lane    int
		ahead   bool
		decided bool // every face in view has had its answer
	}{{"door", laneDoor, true, false}, {"street", laneRest, false, false}, {"door-decided", laneDoor, false, true}} {
		s := newShots("cam-"+c.name, streams.NewStream(), nil, NewMetrics(nil), slog.Default())
		s.decided = func() bool { return c.decided }
		st := &shotState{decAt: -1}
		play(s, st, 0, 4)
		if _, err := s.serve(st, momentOf(us[2]), c.lane); err != nil {
			t.Fatal(err)
		}
		// Within the first GOP: the analysis at unit 9; ahead stops at 9 - 60 ms = unit 7.
		play(s, st, 4, 10)
		before := decoded(s)
		if want := map[bool]int{true: 3 + 5, false: 3}[c.ahead]; before != want {
			t.Errorf("%s: %d frames decoded before the second shot, want %d (3 for the first, 5 ahead: units 3–7)", c.name, before, want)
		}
		pic, err := s.serve(st, momentOf(us[9]), c.lane)
		if err != nil {
			t.Fatal(err)
		}
		n := decoded(s) - before
		if c.ahead && n != 2 || !c.ahead && n != 7 {
			t.Errorf("%s: the shot at unit 9 decoded %d frames", c.name, n)
		}
		if !bytes.Equal(pic.BGR, pics[9].BGR) {
			t.Errorf("%s: the shot at unit 9 is not unit 9's picture", c.name)
		}
		// Into the next GOP: ahead jumps to its key frame, and the rest of the last one is left.
		play(s, st, 10, key2+10)
		before = decoded(s)
		pic, err = s.serve(st, momentOf(us[key2+8]), c.lane)
		if err != nil {
			t.Fatal(err)
		}
		n = decoded(s) - before
		if c.ahead && n > 2 || !c.ahead && n != 9 {
			t.Errorf("%s: the shot at unit %d (key frame at %d) decoded %d frames", c.name, key2+8, key2, n)
		}
		if !bytes.Equal(pic.BGR, pics[key2+8].BGR) {
			t.Errorf("%s: the shot at unit %d is not its picture", c.name, key2+8)
		}
		t.Logf("%s: %d main frames decoded in all for two shots %d frames apart", c.name, decoded(s), key2+8-9)
		if st.dec != nil {
			st.dec.Close()
		}
	}
}

// TestShotsRunDecodesAhead: run decodes ahead after a door shot, as units arrive, and not after
// another lane's.
func TestShotsRunDecodesAhead(t *testing.T) {
	us := shotClip(t)
	for _, lane := range []int{laneDoor, laneRest} {
		ctx, cancel := context.WithCancel(context.Background())
		main := streams.NewStream()
		s := newShots("cam", main, nil, NewMetrics(nil), slog.Default())
		done := make(chan struct{})
		go func() { defer close(done); s.run(ctx) }()
		time.Sleep(50 * time.Millisecond) // run's reader in place
		for _, u := range us[:4] {
			main.Write(u)
			s.reached(momentOf(u))
		}
		if _, err := s.Shot(ctx, momentOf(us[2]), lane); err != nil {
			t.Fatal(err)
		}
		for _, u := range us[4:10] {
			main.Write(u)
			s.reached(momentOf(u))
			time.Sleep(5 * time.Millisecond)
		}
		decoded := func() int { return int(testutilValue(s.metrics.mainDecoded.WithLabelValues("cam"))) }
		deadline := time.Now().Add(2 * time.Second)
		for lane == laneDoor && decoded() < 8 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if lane == laneRest {
			time.Sleep(300 * time.Millisecond)
		}
		if n, want := decoded(), map[int]int{laneDoor: 8, laneRest: 3}[lane]; n != want {
			t.Errorf("lane %d: %d main frames decoded after a shot at unit 2 and units up to 9, want %d", lane, n, want)
		}
		cancel()
		<-done
	}
}

// TestShotsRunAnswersAtDeadline: with no ticker, a request whose moment the main stream never
// reaches is still answered at its deadline, from what is buffered; and a stream that ends
// leaves its shots answering.
func TestShotsRunAnswersAtDeadline(t *testing.T) {
	us := shotClip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a broken timer fails, not hangs
	defer cancel()
	main := streams.NewStream()
	s := newShots("cam", main, nil, NewMetrics(nil), slog.Default())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx) }()
	for main.Stats().Readers == 0 && ctx.Err() == nil { // run's reader in place
		time.Sleep(time.Millisecond)
	}
	for _, u := range us[:4] {
		main.Write(u)
	}
	later := momentOf(us[3])
	later.arrival = later.arrival.Add(time.Hour) // a moment the stream never reaches
	later.capture = later.capture.Add(time.Hour)
	t0 := time.Now()
	_, err := s.Shot(ctx, later, laneRest)
	if waited := time.Since(t0); !errors.Is(err, ErrNoShot) || waited < shotWait || waited > shotWait+300*time.Millisecond {
		t.Fatalf("a shot of a moment never reached: %v after %v, want ErrNoShot after %v", err, waited, shotWait)
	}
	main.Close() // the camera went away: its buffered frames still serve
	pic, err := s.Shot(ctx, momentOf(us[2]), laneRest)
	if err != nil || pic == nil || pic.W == 0 {
		t.Fatalf("a shot after the stream closed: %v", err)
	}

	// Units still queued when the stream closes are kept: a close seen first loses none.
	main2 := streams.NewStream()
	s2 := newShots("cam2", main2, nil, NewMetrics(nil), slog.Default())
	done2 := make(chan struct{})
	go func() { defer close(done2); s2.run(ctx) }()
	for main2.Stats().Readers == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	// On one P the writes and the close are all done before run looks: it finds four units
	// queued and the close, and picks among them at random.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, u := range us[:4] {
		main2.Write(u)
	}
	main2.Close()
	t0 = time.Now()
	if pic, err := s2.Shot(ctx, momentOf(us[3]), laneRest); err != nil || pic == nil || time.Since(t0) >= shotWait {
		// A lost unit shows as a request answered only at its deadline (from a frame near it).
		t.Fatalf("a shot of the last unit queued before the stream closed: %v after %v", err, time.Since(t0))
	}
	cancel()
	<-done
	<-done2
}
