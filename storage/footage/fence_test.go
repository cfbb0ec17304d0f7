package footage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/events"
)

// TestStaleHolderFenced: node A holds cam001 (epoch 1), is cut off, and node B takes the camera
// (epoch 2). A's segment and event, written after B took over, are refused; B's are stored; a
// segment of B's at the same start time as one of A's replaces it, never the other way.
func TestStaleHolderFenced(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	idx := PGIndex{Pool: pool}
	a, err := Fence(ctx, pool, "cam001", "node-a")
	if err != nil || a != 1 {
		t.Fatalf("node a's fence: %d %v", a, err)
	}
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	seg := func(start time.Time, lease uint64, key string) Segment {
		return Segment{Camera: "cam001", Start: start, End: start.Add(4 * time.Second), Key: key, Bytes: 100, Codec: "h264", Lease: lease}
	}
	if err := idx.AddSegment(ctx, seg(t0, a, "a-0")); err != nil {
		t.Fatalf("node a's segment while it holds the camera: %v", err)
	}
	b, err := Fence(ctx, pool, "cam001", "node-b")
	if err != nil || b != 2 {
		t.Fatalf("node b's fence: %d %v", b, err)
	}
	if err := idx.AddSegment(ctx, seg(t0.Add(4*time.Second), a, "a-1")); !errors.Is(err, ErrFenced) {
		t.Fatalf("node a's segment after node b took the camera: %v, want ErrFenced", err)
	}
	if err := idx.AddSegment(ctx, seg(t0, b, "b-0")); err != nil {
		t.Fatalf("node b's segment: %v", err)
	}
	if err := idx.AddSegment(ctx, seg(t0.Add(8*time.Second), 0, "unleased")); err != nil {
		t.Fatalf("a segment outside placement: %v", err)
	}
	got, err := idx.Segments(ctx, "cam001", t0.Add(-time.Minute), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range got {
		keys = append(keys, s.Key)
	}
	if len(keys) != 2 || keys[0] != "b-0" || keys[1] != "unleased" {
		t.Fatalf("segments stored: %v, want [b-0 unleased]", keys)
	}

	store := events.New(pool)
	ev := func(lease uint64, seen time.Time) *event.Event {
		return &event.Event{ID: event.NewID(seen), Camera: "cam001", Kind: event.KindFace, Time: seen, First: seen.Add(-time.Second), Frames: 3, Lease: lease}
	}
	now := time.Now()
	stale, fresh, before := ev(a, now), ev(b, now), ev(a, now.Add(-time.Minute))
	n, err := store.Insert(ctx, []*event.Event{stale, fresh, before}, func(*event.Event) string { return "" })
	if err != nil || n != 2 || store.Fenced() != 1 {
		t.Fatalf("events stored %d (fenced %d), %v: want node b's and node a's from before the fence", n, store.Fenced(), err)
	}
	if _, err := store.Get(ctx, before.ID); err != nil {
		t.Errorf("node a's event from before node b took the camera: %v", err)
	}
	if _, err := store.Get(ctx, stale.ID); err == nil {
		t.Error("node a's event after node b took the camera was stored")
	}
	if _, err := store.Get(ctx, fresh.ID); err != nil {
		t.Errorf("node b's event: %v", err)
	}
}
