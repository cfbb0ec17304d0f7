package pipeline

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers"
)

// TestOverloadDropsOldestAndStaysBounded offers frames far faster than one worker can take them:
// the queue stays at its bound, the oldest frames are dropped and counted, every processed frame
// is recent, a corrupt frame does not stop the worker, and nothing leaks once it stops.
func TestOverloadDropsOldestAndStaysBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	td, mdir := testenv.Testdata(t), testenv.Models(t)
	img, err := recognizers.LoadImage(filepath.Join(td, "groups/obama_and_biden.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	w, h := img.Cols(), img.Rows()
	bgr := append([]byte(nil), img.ToBytes()...)
	img.Close()

	matsBefore := matCount()
	m := NewMetrics(nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const queue = 4
	pool := facePool(t, mdir, 1, queue, m, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pool.Run(ctx); close(done) }()

	var mu sync.Mutex
	var processed []*Observation
	var waits []time.Duration
	const offered = 200
	for i := 0; i < offered; i++ {
		j := &Job{Camera: "c", Seq: uint64(i), Time: time.Now(), W: w, H: h, BGR: bgr, Done: func(o *Observation) {
			mu.Lock()
			processed = append(processed, o)
			waits = append(waits, time.Since(o.Time))
			mu.Unlock()
		}}
		if i == 50 {
			j.W, j.H, j.BGR = 4, 4, make([]byte, 10) // corrupt: the buffer is smaller than the frame
		}
		pool.Offer(j)
		if l := pool.q.Len(); l > queue {
			t.Fatalf("queue grew to %d", l)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // the queue drains
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	// One camera: its newer frame takes its waiting one's place (superseded); full queues of
	// other cameras' frames would drop it as queue_full.
	drops := testutilValue(m.drops.WithLabelValues("c", KindFace, dropFull)) + testutilValue(m.drops.WithLabelValues("c", KindFace, dropSuperseded))
	if int(drops)+len(processed) != offered {
		t.Fatalf("%d processed + %.0f dropped != %d offered", len(processed), drops, offered)
	}
	if drops < offered/2 {
		t.Fatalf("only %.0f of %d frames dropped: not overloaded?", drops, offered)
	}
	var worst time.Duration
	faces := 0
	for i, o := range processed {
		worst = max(worst, waits[i])
		faces += len(o.Faces)
	}
	last := processed[len(processed)-1]
	if last.Seq < offered-queue-1 {
		t.Fatalf("the newest frames were not processed: last seq %d", last.Seq)
	}
	if faces < 2*(len(processed)-1) {
		t.Fatalf("%d faces in %d frames", faces, len(processed))
	}
	if errs := testutilValue(m.errors.WithLabelValues("c", KindFace)); errs > 1 {
		t.Fatalf("%v recognizer errors", errs)
	}
	t.Logf("offered %d, processed %d, dropped %.0f, worst age at processing end %v", offered, len(processed), drops, worst.Round(time.Millisecond))
	// Latency of what is processed is bounded by the queue: at most queue+1 frames of work.
	if worst > 3*time.Second {
		t.Fatalf("a processed frame waited %v", worst)
	}
	if n := matCount() - matsBefore; n != 0 {
		t.Fatalf("%d Mats leaked", n)
	}
}

// matCount is gocv's live Mat count under the matprofile build tag, else 0.
func matCount() int { return gocvMatCount() }
