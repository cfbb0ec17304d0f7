package footage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/streams"
)

func TestRetentionByDaysAndBytes(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	idx := PGIndex{Pool: pool}
	blobs := blob.FS{Root: t.TempDir()}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	// Ten days of one segment a day, 1,000 bytes each, on two cameras.
	for _, cam := range []string{"a", "b"} {
		for d := 0; d < 10; d++ {
			start := now.AddDate(0, 0, -d)
			key := fmt.Sprintf("footage/%s/%d.mp4", cam, d)
			blobs.Put(ctx, key, make([]byte, 1000), "video/mp4")
			if err := idx.AddSegment(ctx, Segment{Camera: cam, Start: start, End: start.Add(10 * time.Second), Key: key, Bytes: 1000, Codec: streams.H264}); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, freed, err := idx.Retain(ctx, blobs, "a", Policy{Days: 7}, now)
	if err != nil || n != 2 || freed != 2000 {
		t.Fatalf("by days: %d segments, %d bytes, %v", n, freed, err)
	}
	if _, err := blobs.Get(ctx, "footage/a/9.mp4"); err == nil {
		t.Fatal("the expired blob is still there")
	}
	n, _, err = idx.Retain(ctx, blobs, "a", Policy{MaxBytes: 4500}, now)
	if err != nil || n != 4 {
		t.Fatalf("by bytes: %d segments, %v", n, err)
	}
	left, _ := idx.Segments(ctx, "a", now.AddDate(0, 0, -30), now.Add(time.Hour))
	if len(left) != 4 || !left[0].Start.Equal(now.AddDate(0, 0, -3)) {
		t.Fatalf("left %d segments, oldest %v", len(left), left[0].Start)
	}
	other, _ := idx.Segments(ctx, "b", now.AddDate(0, 0, -30), now.Add(time.Hour))
	if len(other) != 10 {
		t.Fatalf("camera b lost footage: %d", len(other))
	}
}

// TestSpans: segments that follow one another (within 2 s) are one recorded span, a longer hole
// starts another; a span counts its segments and bytes.
func TestSpans(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	seg := func(from, to float64, bytes int64) Segment {
		return Segment{Start: t0.Add(time.Duration(from * float64(time.Second))), End: t0.Add(time.Duration(to * float64(time.Second))), Bytes: bytes}
	}
	got := Spans([]Segment{seg(0, 9.96, 10), seg(10, 19.96, 10), seg(20, 30, 10), seg(45, 55, 5), seg(56.5, 60, 5)})
	if len(got) != 2 || !got[0].Start.Equal(t0) || !got[0].End.Equal(t0.Add(30*time.Second)) || got[0].Segments != 3 || got[0].Bytes != 30 ||
		!got[1].Start.Equal(t0.Add(45*time.Second)) || !got[1].End.Equal(t0.Add(60*time.Second)) || got[1].Segments != 2 {
		t.Fatalf("spans %+v", got)
	}
	if Spans(nil) != nil {
		t.Fatal("no segments, some spans")
	}
}
