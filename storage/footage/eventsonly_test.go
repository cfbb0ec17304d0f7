package footage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/camsim"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// TestEventsOnlyKeepsFootageAroundEvents records 1 s segments in events-only mode with 1 s of
// pre- and post-roll; one event 3 s in: only the segments around it are kept.
func TestEventsOnlyKeepsFootageAroundEvents(t *testing.T) {
	clip, err := camsim.SharedSmallClip(context.Background())
	if errors.Is(err, camsim.ErrNoTestdata) {
		t.Skip(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: addr, Cameras: 1}, []*camsim.Clip{clip}, log)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sessions := rtsp.NewPool(log)
	defer sessions.Close()
	s, _ := sessions.Add(rtsp.Config{ID: "cam001", URL: "rtsp://" + addr + "/cam/001"})
	idx := &memIndex{}
	rec := NewRecorder("cam001", s.Stream(), blob.FS{Root: t.TempDir()}, idx,
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
