package footage

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/storage/blob"
)

// TestEventsOnlyKeepsFootageAroundEvents records 1 s segments in events-only mode with 1 s of
// pre- and post-roll; one event 3 s in: only the segments around it are kept.
func TestEventsOnlyKeepsFootageAroundEvents(t *testing.T) {
	log := quiet
	stream := liveCamera(t)
	idx := &memIndex{}
	rec := NewRecorder("cam001", stream, blob.FS{Root: t.TempDir()}, idx,
		Options{SegmentLength: time.Second, WorkDir: t.TempDir(), EventsOnly: true, PreRoll: time.Second, PostRoll: time.Second, Hold: 2 * time.Second}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	time.Sleep(3 * time.Second)
	event := time.Now()
	rec.Mark(event)
	time.Sleep(6 * time.Second)
	cancel()
	<-done
	segs, _ := idx.Segments(context.Background(), "", time.Time{}, time.Time{})
	if len(segs) < 2 || len(segs) > 4 {
		t.Fatalf("%d segments kept around one event (1 s segments, 1 s pre/post-roll), want 2–4", len(segs))
	}
	for _, sg := range segs {
		if sg.End.Before(event.Add(-time.Second-100*time.Millisecond)) || sg.Start.After(event.Add(time.Second+100*time.Millisecond)) {
			t.Errorf("segment %v–%v is outside the event's window", sg.Start.Sub(event), sg.End.Sub(event))
		}
	}
	t.Logf("%d segments kept of ~9 recorded", len(segs))
}
