package footage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/blob"
)

type memIndex struct {
	mu   sync.Mutex
	segs []Segment
}

func (m *memIndex) AddSegment(_ context.Context, s Segment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.segs = append(m.segs, s)
	return nil
}

func (m *memIndex) Segments(context.Context, string, time.Time, time.Time) ([]Segment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Segment(nil), m.segs...), nil
}

// TestDiskFullLosesOneSegmentNotTheRecording fills the recorder's work disk (a real 512 KiB
// tmpfs, ENOSPC): the segment being written is abandoned with a clear log, and recording goes on
// once there is room again.
func TestDiskFullLosesOneSegmentNotTheRecording(t *testing.T) {
	work := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", work).CombinedOutput(); err != nil {
		testenv.Missing(t, "a small tmpfs to fill (mount needs root): %v %s", err, out)
	}
	defer exec.Command("umount", work).Run()
	log := quiet
	stream := liveCamera(t)

	// Leave ~16 KiB free: the next segment cannot be written.
	filler := filepath.Join(work, "filler")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 496<<10))
	f.Close()

	idx := &memIndex{}
	rec := NewRecorder("cam001", stream, blob.FS{Root: t.TempDir()}, idx, Options{SegmentLength: time.Second, WorkDir: work}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	time.Sleep(3 * time.Second)
	full, _ := idx.Segments(ctx, "", time.Time{}, time.Time{})
	os.Remove(filler) // room again
	time.Sleep(4 * time.Second)
	cancel()
	<-done
	after, _ := idx.Segments(context.Background(), "", time.Time{}, time.Time{})
	t.Logf("segments stored while the disk was full: %d; after: %d", len(full), len(after)-len(full))
	if len(full) != 0 {
		t.Fatalf("%d segments stored on a full disk", len(full))
	}
	if len(after)-len(full) < 2 {
		t.Fatalf("recording did not resume: %d segments after the disk had room", len(after)-len(full))
	}
}
