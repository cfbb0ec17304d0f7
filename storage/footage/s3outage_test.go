package footage

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/blob"
)

// TestS3OutageWhileRecording: the object store goes away while a camera records; segments
// spool to disk, recording never stops, and every segment reaches S3 once it is back.
// FAULT_SECONDS sets the outage (the run: 60).
func TestS3OutageWhileRecording(t *testing.T) {
	srv := testenv.StartS3(t)
	ctx := context.Background()
	s3, err := blob.NewS3(ctx, blob.S3Config{Endpoint: srv.Endpoint, Bucket: "footage", AccessKey: srv.AccessKey, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	log := quiet
	spool := &blob.Spooled{Primary: s3, Spool: blob.FS{Root: t.TempDir()}, Timeout: time.Second, MaxBytes: 64 << 20}
	stream := liveCamera(t)
	idx := &memIndex{}
	rec := NewRecorder("cam001", stream, spool, idx, Options{SegmentLength: time.Second, WorkDir: t.TempDir()}, log)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { rec.Run(rctx); close(done) }()

	outage := 4 * time.Second
	if v, err := strconv.Atoi(os.Getenv("FAULT_SECONDS")); err == nil {
		outage = time.Duration(v) * time.Second
	}
	time.Sleep(2 * time.Second)
	srv.Stop()
	time.Sleep(outage)
	srv.Start()
	time.Sleep(2 * time.Second)
	cancel()
	<-done
	spool.Drain(ctx)
	segs, _ := idx.Segments(ctx, "", time.Time{}, time.Time{})
	spooled, uploaded := spool.Counts()
	t.Logf("S3 down %v: %d segments recorded, %d spooled, %d uploaded afterwards, %d dropped", outage, len(segs), spooled, uploaded, spool.DroppedFootage())
	if spooled == 0 || uploaded != spooled || spool.DroppedFootage() != 0 {
		t.Fatalf("spooled %d, uploaded %d", spooled, uploaded)
	}
	if want := int((outage + 4*time.Second) / time.Second); len(segs) < want-2 {
		t.Fatalf("%d segments over %v of recording", len(segs), outage+4*time.Second)
	}
	for _, sg := range segs {
		if _, err := s3.Get(ctx, sg.Key); err != nil {
			t.Fatalf("segment %s not in S3: %v", sg.Key, err)
		}
	}
}
