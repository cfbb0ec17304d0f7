package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// timedCollector keeps events with the time they were published.
type timedCollector struct {
	collector
	at map[string]time.Time
}

func (c *timedCollector) Publish(ctx context.Context, e *event.Event) error {
	c.mu.Lock()
	c.at[e.ID] = time.Now()
	c.mu.Unlock()
	return c.collector.Publish(ctx, e)
}

// TestOverloadKeepsDoorCameras: one face worker, ten busy cameras, the street ones sampled at every
// frame (far over capacity; under the race detector eight, the street cameras at 5 a second and the
// door camera at 2.5, which is still over capacity and leaves the 2-core machine's decoders and
// motion gates, slowed several times, room for the worker): the door camera's frames are taken
// first, so it is identified within its latency and loses next to nothing, while the others
// drop, and every camera's drops are counted in its Stats (what GET /v1/cameras shows).
func TestOverloadKeepsDoorCameras(t *testing.T) {
	td, mdir := testenv.Testdata(t), testenv.Models(t)
	dnn.SetThreads(1)
	defer dnn.SetThreads(0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lib, err := camsim.LoadLibrary(td)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := camsim.BuildClip(context.Background(), lib, camsim.Params{Width: 1280, Height: 720, FPS: 10, GOP: 1, Bitrate: 1500, Seconds: 12},
		scenario(lib), 1, os.TempDir()+"/vigil-test-clips")
	if err != nil {
		t.Fatal(err)
	}
	// Every frame of the street cameras (the clip's 10 a second): at 5 a second, with camsim
	// writing a frame per write, a faster machine's one worker kept up but for 3.5% of them.
	cams, streetFPS, doorFPS := 10, 10.0, 5.0
	if raceEnabled {
		// 2 fps overloaded a race build until faces of published passages went undescribed
		// (2% dropped since): 3.5 fps overloads it again. The door camera at the site's 2.5 a
		// second: at 5, a slower machine's race build spent 85% of the one worker on the door
		// camera's own frames, which then queued behind each other (p50 0.7 s in CI).
		// 3.5 a second for the street cameras dropped 1.7% on a faster machine: 5.
		cams, streetFPS, doorFPS = 8, 5, 2.5
	}
	addr := startFleet(t, clip, cams, 3, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewMetrics(nil)
	fp := facePool(t, mdir, 1, 8, m, log)
	got := &timedCollector{at: map[string]time.Time{}}
	pl := New(Config{Faces: fp, Gallery: enrolledGallery(t, td, mdir), Publisher: got, Metrics: m, Log: log})
	pl.SetPriority(func(camera string) bool { return camera == "cam001" })
	pl.Start(ctx)
	pool := rtsp.NewPool(log)
	defer pool.Close()
	for i := 1; i <= cams; i++ {
		id := fmt.Sprintf("cam%03d", i)
		s, _ := pool.Add(rtsp.Config{ID: id, URL: fmt.Sprintf("rtsp://%s/cam/%03d", addr, i)})
		fps := streetFPS
		if id == "cam001" {
			fps = doorFPS
		}
		if err := pl.AddCamera(id, s.Stream(), Options{FPS: fps, Faces: true}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Second)
	stats := map[string]CameraStats{}
	for i := 1; i <= cams; i++ {
		id := fmt.Sprintf("cam%03d", i)
		st, ok := pl.Stats(id)
		if !ok || st.Offered == 0 {
			t.Fatalf("%s: no stats (%+v)", id, st)
		}
		stats[id] = st
	}
	cancel()
	pl.Wait()
	var door []time.Duration
	for _, e := range got.all() {
		if e.Camera == "cam001" && e.Match != nil && e.Match.Votes >= 2 {
			door = append(door, got.at[e.ID].Sub(e.Arrival))
		}
	}
	sort.Slice(door, func(i, j int) bool { return door[i] < door[j] })
	var others, othersDropped uint64
	for id, st := range stats {
		t.Logf("%s: %+v", id, st)
		if id != "cam001" {
			others += st.Offered
			othersDropped += st.Dropped
		}
	}
	d := stats["cam001"]
	t.Logf("door camera identified %d times, frame → event %v", len(door), door)
	if othersDropped*10 < others {
		t.Fatalf("the node was not over capacity: the other cameras dropped %d of %d", othersDropped, others)
	}
	if d.Dropped*20 > d.Offered {
		t.Errorf("the door camera dropped %d of %d frames", d.Dropped, d.Offered)
	}
	// Every one within 500 ms on a loaded test machine (the bench's goal is 300). Under the race
	// detector, which slows the Go side of the decoders, queue and tracker several times, half
	// within 750 ms and every one within 1 s: one worker means a door frame waits for the frame
	// in progress (~170 ms there on a slower CI machine), whichever camera's it is, and then
	// takes as long itself. What shows the lanes work is the door camera's drops, checked above.
	median, limit := 500*time.Millisecond, 500*time.Millisecond
	if raceEnabled {
		median, limit = 750*time.Millisecond, time.Second
	}
	if len(door) == 0 || door[len(door)-1] > limit || door[len(door)/2] > median {
		t.Errorf("door camera frame → identified event %v (want the median within %v and every one within %v)", door, median, limit)
	}
}
