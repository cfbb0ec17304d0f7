package streams

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func unit(i int, key bool) *Unit {
	return &Unit{Codec: H264, PTS: time.Duration(i) * 40 * time.Millisecond, NALUs: [][]byte{{byte(i)}}, Key: key}
}

func TestReaderStartsOnKeyAndGetsEverything(t *testing.T) {
	s := NewStream()
	r := s.NewReader("a", 100)
	for i := 0; i < 50; i++ {
		s.Write(unit(i, i%10 == 3))
	}
	ctx := context.Background()
	first, _ := r.Read(ctx)
	if !first.Key || first.NALUs[0][0] != 3 {
		t.Fatalf("first unit %v, want key unit 3", first.NALUs)
	}
	got := 1
	for len(r.ch) > 0 {
		r.Read(ctx)
		got++
	}
	if got != 47 || r.Dropped() != 0 {
		t.Fatalf("got %d units and %d drops, want 47 and 0", got, r.Dropped())
	}
}

func TestSlowReaderDropsUntilKeyAndDoesNotSlowOthers(t *testing.T) {
	s := NewStream()
	fast := s.NewReader("fast", 1000)
	slow := s.NewReader("slow", 4)
	for i := 0; i < 100; i++ {
		s.Write(unit(i, i%10 == 0))
	}
	if len(fast.ch) != 100 || fast.Dropped() != 0 {
		t.Fatalf("fast reader: %d queued, %d dropped", len(fast.ch), fast.Dropped())
	}
	// slow got 0..3, overflowed at 4, then skipped to 10 which overflowed too (queue still full).
	if slow.Dropped() != 96 || slow.Overflows() == 0 {
		t.Fatalf("slow reader dropped %d (overflows %d), want 96", slow.Dropped(), slow.Overflows())
	}
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		u, _ := slow.Read(ctx)
		if int(u.NALUs[0][0]) != i {
			t.Fatalf("slow reader order broken at %d: %d", i, u.NALUs[0][0])
		}
	}
	// Once drained, it resumes at the next key unit, never mid-GOP.
	s.Write(unit(100, false))
	s.Write(unit(101, true))
	s.Write(unit(102, false))
	u, _ := slow.Read(ctx)
	if u.NALUs[0][0] != 101 {
		t.Fatalf("resumed on %d, want key unit 101", u.NALUs[0][0])
	}
	if st := s.Stats(); st.Units != 103 || st.Readers != 2 || st.ReaderDrops != slow.Dropped() {
		t.Fatalf("stats %+v", st)
	}
}

func TestReadUnblocksOnCloseAndContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := NewStream()
	r1 := s.NewReader("r1", 4)
	r2 := s.NewReader("r2", 4)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); _, errs[0] = r1.Read(context.Background()) }()
	go func() { defer wg.Done(); _, errs[1] = r2.Read(ctx) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	s.Close()
	wg.Wait()
	if !errors.Is(errs[0], ErrClosed) || !errors.Is(errs[1], context.Canceled) && !errors.Is(errs[1], ErrClosed) {
		t.Fatalf("errors %v", errs)
	}
	if _, err := s.NewReader("late", 1).Read(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("reader on closed stream: %v", err)
	}
}

func TestConcurrentReadersUnderRace(t *testing.T) {
	s := NewStream()
	const n = 2000
	var wg sync.WaitGroup
	counts := make([]int, 4)
	readers := make([]*Reader, 4)
	for i := range readers {
		readers[i] = s.NewReader("r", 64)
	}
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := r.Read(context.Background()); err != nil {
					return
				}
				counts[i]++
			}
		}()
	}
	for i := 0; i < n; i++ {
		s.Write(unit(i, i%25 == 0))
		if i%100 == 0 {
			s.Stats()
		}
	}
	time.Sleep(50 * time.Millisecond)
	s.Close()
	wg.Wait()
	for i, r := range readers {
		if uint64(counts[i])+r.Dropped() != n {
			t.Fatalf("reader %d: %d read + %d dropped != %d", i, counts[i], r.Dropped(), n)
		}
	}
}

func BenchmarkWriteFourReaders(b *testing.B) {
	s := NewStream()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		r := s.NewReader("r", 256)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := r.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	u := unit(0, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Write(u)
	}
	b.StopTimer()
	s.Close()
	wg.Wait()
}

// TestStreamKeepsGOP: a reader with the GOP gets the units since the last key unit and then
// the next live unit, with nothing missed or repeated; a GOP over the bound is not kept.
func TestStreamKeepsGOP(t *testing.T) {
	s := NewStream()
	s.KeepGOP(4, 1<<20)
	unit := func(i int, key bool) *Unit {
		return &Unit{Codec: H264, PTS: time.Duration(i) * time.Millisecond, NALUs: [][]byte{{byte(i)}}, Key: key}
	}
	s.Write(unit(0, true))
	s.Write(unit(1, false))
	s.Write(unit(2, true))
	s.Write(unit(3, false))
	r, gop := s.NewReaderWithGOP("live", 8)
	defer r.Close()
	if len(gop) != 2 || gop[0].PTS != 2*time.Millisecond || gop[1].PTS != 3*time.Millisecond {
		t.Fatalf("gop %v", gop)
	}
	s.Write(unit(4, false))
	u, err := r.Read(context.Background())
	if err != nil || u.PTS != 4*time.Millisecond {
		t.Fatalf("next unit %v %v", u, err)
	}
	for i := 5; i < 9; i++ { // the GOP grows past 4 units: no longer kept
		s.Write(unit(i, false))
	}
	if _, gop := s.NewReaderWithGOP("late", 8); len(gop) != 0 {
		t.Fatalf("an over-long GOP was kept: %d units", len(gop))
	}
}

// TestRatesSteadyUnderBurstyArrival: a steady 25 fps, 1 Mb/s camera whose frames arrive in bursts
// (8 at once, then nothing for 320 ms) reads 25 fps and 1 Mb/s in every window (issue 18: the
// arrival-time estimate read 8.8–50 fps); the first reading comes after a second of stream time;
// a camera that restarts its clock starts a new window instead of reading nonsense.
func TestRatesSteadyUnderBurstyArrival(t *testing.T) {
	s := NewStream()
	t0 := time.Now()
	frame := make([]byte, 5000) // 25 × 5000 B × 8 = 1 Mb/s
	var readings []Stats
	write := func(i, base int) {
		u := &Unit{Codec: H264, PTS: time.Duration(i-base) * 40 * time.Millisecond, NALUs: [][]byte{frame}, Key: i%25 == 0,
			Arrival: t0.Add(time.Duration(i/8*8) * 40 * time.Millisecond)} // 8 frames arrive together
		s.Write(u)
		if i%8 == 7 {
			readings = append(readings, s.Stats())
		}
	}
	for i := 0; i < 20; i++ {
		write(i, 0)
	}
	if st := s.Stats(); st.FPS != 0 {
		t.Fatalf("after 0.8 s of stream time: %.1f fps, want no reading before 1 s", st.FPS)
	}
	for i := 20; i < 26; i++ {
		write(i, 0)
	}
	if st := s.Stats(); st.FPS < 24.5 || st.FPS > 25.5 {
		t.Fatalf("after 1 s of stream time: %.1f fps, want 25", st.FPS)
	}
	for i := 26; i < 800; i++ {
		write(i, 0)
	}
	for _, st := range readings[4:] {
		if st.FPS < 24.5 || st.FPS > 25.5 || st.Bitrate < 0.98e6 || st.Bitrate > 1.02e6 {
			t.Fatalf("reading %.2f fps %d b/s, want 25 fps and 1 Mb/s", st.FPS, st.Bitrate)
		}
	}
	// The camera restarts its clock: no reading from a window spanning the jump.
	for i := 800; i < 1100; i++ {
		write(i, 800)
	}
	if st := s.Stats(); st.FPS < 24.5 || st.FPS > 25.5 {
		t.Fatalf("after a clock restart: %.2f fps", st.FPS)
	}
}
