package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/testkit/clips"
	"github.com/vigil-oss/vigil/streams"
)

// A freed slot goes to the door camera's work even when street work asked first, and to
// cameras with a track in progress before the rest.
func TestCPUSlotsDoorFirst(t *testing.T) {
	c := newCPUSlots(1)
	c.acquire(laneRest) // the one slot is busy
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for k, lane := range []int{laneRest, laneBusy, laneRest, laneDoor} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.acquire(lane)
			mu.Lock()
			order = append(order, lane)
			mu.Unlock()
			c.release()
		}()
		// Each waiter queues before the next asks.
		waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiters) == k+1 })
	}
	c.release()
	wg.Wait()
	want := []int{laneDoor, laneBusy, laneRest, laneRest}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("slots taken in lanes %v, want %v", order, want)
		}
	}
	if c.free != 1 {
		t.Fatalf("%d slots free after all released, want 1", c.free)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Never more than n calls hold a slot at once, whatever the lanes.
func TestCPUSlotsBound(t *testing.T) {
	c := newCPUSlots(2)
	var in, peak atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.acquire(i % 3)
			n := in.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			in.Add(-1)
			c.release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("at most %d calls ran at once, want 2", p)
	}
	var none *cpuSlots // unscheduled: acquire and release do nothing
	none.acquire(laneDoor)
	none.release()
}

// sleepRec is a recognizer that takes a while and counts how many run at once.
type sleepRec struct {
	in, peak *atomic.Int32
}

func (s sleepRec) Kind() string { return KindFace }
func (s sleepRec) Close()       {}
func (s sleepRec) Recognize(_ gocv.Mat, _ *Observation) error {
	n := s.in.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	time.Sleep(20 * time.Millisecond)
	s.in.Add(-1)
	return nil
}

// A pool of three workers under one CPU slot runs one recognizer at a time, and a door
// camera's frame offered after six street frames is done third: the two street frames already
// waiting for the slot do not keep it waiting behind the other four.
func TestPoolWorkersShareTheSlots(t *testing.T) {
	var peak atomic.Int32
	pool, _ := slotPool(t, 3, 16, &peak)
	var mu sync.Mutex
	var done []string
	var wg sync.WaitGroup
	job := func(camera string, door bool) *Job {
		wg.Add(1)
		return &Job{Camera: camera, W: 4, H: 4, BGR: make([]byte, 48), Priority: door, Done: func(*Observation) {
			mu.Lock()
			done = append(done, camera)
			mu.Unlock()
			wg.Done()
		}}
	}
	for i := range 6 {
		pool.Offer(job(fmt.Sprintf("street%d", i), false))
	}
	waitFor(t, func() bool { return pool.q.Len() == 3 }) // three taken by the workers
	pool.Offer(job("door", true))
	wg.Wait()
	if p := peak.Load(); p != 1 {
		t.Fatalf("%d recognizers ran at once under one slot", p)
	}
	at := slices.Index(done, "door")
	if at < 0 || at > 2 {
		t.Fatalf("frames done in the order %v: the door camera's should be among the first three", done)
	}
}

// Work that yields between its steps hands its slot to a door camera's waiting work, and goes on
// once that is done; with only its own lane waiting it keeps the slot.
func TestCPUSlotsYield(t *testing.T) {
	c := newCPUSlots(1)
	c.acquire(laneBusy) // a street camera's shot, decoding forward
	street := make(chan struct{})
	go func() { // another street camera's work: same lane, it must not be let in by yield
		c.acquire(laneBusy)
		close(street)
		c.release()
	}()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiters) == 1 })
	c.yield(laneBusy) // nobody above: kept
	select {
	case <-street:
		t.Fatal("yield let in work of its own lane")
	default:
	}
	var order []string
	var mu sync.Mutex
	door := make(chan struct{})
	go func() {
		c.acquire(laneDoor)
		mu.Lock()
		order = append(order, "door")
		mu.Unlock()
		c.release()
		close(door)
	}()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiters) == 2 })
	c.yield(laneBusy) // the door's work runs, then this goes on, ahead of the other street work
	select {
	case <-street:
		t.Fatal("the street work that waited went ahead of the yielded shot")
	default:
	}
	<-door
	if len(order) != 1 || order[0] != "door" {
		t.Fatalf("order %v: the door's work should have gone first", order)
	}
	c.release()
	<-street
}

// A door frame's shot is asked for at once, once, and every caller gets its result.
func TestShotAhead(t *testing.T) {
	var calls atomic.Int32
	started := make(chan struct{})
	want := &Picture{W: 2, H: 2}
	shot := shotAhead(func() (*Picture, error) {
		calls.Add(1)
		close(started)
		return want, nil
	})
	select {
	case <-started: // before anyone asked
	case <-time.After(5 * time.Second):
		t.Fatal("the shot was not asked for ahead")
	}
	for range 2 {
		if pic, err := shot(); pic != want || err != nil {
			t.Fatalf("shot() = %v, %v", pic, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the main stream was asked %d times", n)
	}
}

// A shot asked for ahead that missed is asked for once more when a worker wants it.
func TestShotAheadMissedAsksAgain(t *testing.T) {
	var calls atomic.Int32
	want := &Picture{W: 2, H: 2}
	shot := shotAhead(func() (*Picture, error) {
		if calls.Add(1) == 1 {
			return nil, ErrNoShot
		}
		return want, nil
	})
	var wg sync.WaitGroup
	for range 2 { // the face and the plate pools' workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			if pic, err := shot(); pic != want || err != nil {
				t.Errorf("shot() = %v, %v", pic, err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 2 {
		t.Fatalf("the main stream was asked %d times, want 2", n)
	}
}

// TestKeyFramesHaveTheirOwnSlot: while the models' slots are all busy, a sub-stream camera's key
// frames are still decoded and gated (in the key frames' slot); without it they wait.
func TestKeyFramesHaveTheirOwnSlot(t *testing.T) {
	us := clips.Units(clips.Small(t), time.Time{})
	for _, own := range []bool{true, false} {
		p := New(Config{CPUSlots: 1, NoKeyFrameSlot: !own, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		p.Start(ctx)
		s := streams.NewStream()
		if err := p.AddCamera("cam", s, Options{FPS: 25, KeyframesOnly: true, Faces: true}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the analyser's reader in place
		p.cpu.acquire(laneDoor)           // the models' one slot is busy
		keys := 0
		for _, u := range us {
			s.Write(u)
			time.Sleep(2 * time.Millisecond) // a reader holds 64 units
			if u.Key {
				keys++
			}
		}
		deadline := time.Now().Add(2 * time.Second)
		sampled := func() uint64 { st, _ := p.Stats("cam"); return st.Sampled }
		for own && sampled() < uint64(keys) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !own {
			time.Sleep(300 * time.Millisecond)
		}
		got := sampled()
		p.cpu.release()
		cancel()
		p.Wait()
		if own && got != uint64(keys) || !own && got != 0 {
			t.Errorf("own slot %v: %d of %d key frames decoded while the models' slot was busy", own, got, keys)
		}
	}
}

// A door camera's frame asks for its shot ahead only while a face track is in progress there and
// none of its passages is published (a door frame that moved with no track most often shows no
// face); a shot asked for ahead that no face used is counted.
func TestAsksAhead(t *testing.T) {
	for _, c := range []struct {
		name string
		j    Job
		want bool
	}{
		{"door, a track in progress", Job{Priority: true, Busy: true}, true},
		{"door, no track", Job{Priority: true}, false},
		{"door, a passage published", Job{Priority: true, Busy: true, Settled: []Settled{{}}}, false},
		{"street, a track in progress", Job{Busy: true}, false},
	} {
		if got := asksAhead(&c.j); got != c.want {
			t.Errorf("%s: asksAhead = %v, want %v", c.name, got, c.want)
		}
	}
	var peak atomic.Int32
	pool, m := slotPool(t, 1, 4, &peak)
	var wg sync.WaitGroup
	for _, j := range []*Job{
		{Camera: "busy", Priority: true, Busy: true, Ahead: true}, // as offer marks a job asksAhead says
		{Camera: "idle", Priority: true},
	} {
		wg.Add(1)
		j.W, j.H, j.BGR = 4, 4, make([]byte, 48)
		j.Shot = func() (*Picture, error) { return &Picture{W: 4, H: 4, BGR: make([]byte, 48)}, nil }
		j.Done = func(*Observation) { wg.Done() }
		pool.Offer(j)
	}
	wg.Wait()
	for camera, want := range map[string]float64{"busy": 1, "idle": 0} {
		if got := testutilValue(m.shotsUnused.WithLabelValues(camera)); got != want {
			t.Errorf("%s: %v unused shots counted, want %v", camera, got, want)
		}
	}
}

// slotPool runs a face pool of n sleepRec workers and a queue of size in a pipeline with one CPU
// slot until the test ends; peak records the most recognizers that ran at once.
func slotPool(t *testing.T, n, size int, peak *atomic.Int32) (*Pool, *Metrics) {
	t.Helper()
	var in atomic.Int32
	m := NewMetrics(nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := NewPool(KindFace, n, size, func() (Recognizer, error) { return sleepRec{&in, peak}, nil }, m, log)
	if err != nil {
		t.Fatal(err)
	}
	New(Config{Faces: pool, Metrics: m, Log: log, CPUSlots: 1})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go pool.Run(ctx)
	return pool, m
}
