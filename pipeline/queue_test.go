package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestDropQueuePriority: door cameras' frames are taken first, and a full queue drops the other
// cameras' oldest frames before any door camera's.
func TestDropQueuePriority(t *testing.T) {
	var dropped []string
	q := newDropQueue(4, func(j *Job, _ string) { dropped = append(dropped, j.Camera) })
	put := func(cam string, prio bool) { q.Put(&Job{Camera: cam, Priority: prio}) }
	put("street-1", false)
	put("street-2", false)
	put("door-1", true)
	put("street-3", false)
	put("door-2", true) // full: street-1, the oldest other, goes
	put("door-3", true) // street-2 goes
	if len(dropped) != 2 || dropped[0] != "street-1" || dropped[1] != "street-2" {
		t.Fatalf("dropped %v", dropped)
	}
	put("door-4", true)    // street-3 goes
	put("street-4", false) // only door frames: the newcomer goes
	put("door-5", true)    // the oldest door frame goes
	if want := []string{"street-1", "street-2", "street-3", "street-4", "door-1"}; len(dropped) != len(want) || dropped[3] != want[3] || dropped[4] != want[4] {
		t.Fatalf("dropped %v, want %v", dropped, want)
	}
	order := []string{}
	ctx := context.Background()
	for q.Len() > 0 {
		j, _ := q.Get(ctx)
		order = append(order, j.Camera)
	}
	if want := "door-2 door-3 door-4 door-5"; strings.Join(order, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(order, " "), want)
	}
	// Mixed: priority before others, each lane first in first out.
	put("street-a", false)
	put("door-a", true)
	put("street-b", false)
	put("door-b", true)
	var got []string
	for q.Len() > 0 {
		j, _ := q.Get(ctx)
		got = append(got, j.Camera)
	}
	if want := "door-a door-b street-a street-b"; strings.Join(got, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(got, " "), want)
	}
}

// TestDropQueueLanes: over capacity, door cameras first, then cameras with a track in progress,
// then the rest in turn, one frame per camera (a newer one takes its waiting one's place).
func TestDropQueueLanes(t *testing.T) {
	var dropped []string
	q := newDropQueue(4, func(j *Job, reason string) { dropped = append(dropped, j.Camera+":"+reason) })
	put := func(cam string, seq uint64, door, busy bool) {
		q.Put(&Job{Camera: cam, Seq: seq, Priority: door, Busy: busy})
	}
	put("quiet-1", 1, false, false)
	put("quiet-2", 1, false, false)
	put("quiet-1", 2, false, false) // replaces quiet-1's frame, keeps its turn
	put("walking", 1, false, true)
	put("door", 1, true, false)
	put("quiet-3", 1, false, false) // full: the oldest of the rest (quiet-1) goes
	put("walking", 2, false, true)  // quiet-2 goes
	if want := "quiet-1:superseded quiet-1:queue_full quiet-2:queue_full"; strings.Join(dropped, " ") != want {
		t.Fatalf("dropped %v, want %s", dropped, want)
	}
	var order []string
	for q.Len() > 0 {
		j, _ := q.Get(context.Background())
		order = append(order, fmt.Sprintf("%s/%d", j.Camera, j.Seq))
	}
	if want := "door/1 walking/1 walking/2 quiet-3/1"; strings.Join(order, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(order, " "), want)
	}
}

// TestDropQueueGrows: a queue grown for more cameras keeps its jobs in order and takes more.
func TestDropQueueGrows(t *testing.T) {
	q := newDropQueue(2, func(*Job, string) { t.Fatal("dropped") })
	q.Put(&Job{Camera: "a", Busy: true})
	q.Get(context.Background()) // head moves
	q.Put(&Job{Camera: "b", Busy: true})
	q.Put(&Job{Camera: "c", Busy: true})
	q.grow(5)
	for _, c := range []string{"d", "e", "f"} {
		q.Put(&Job{Camera: c, Busy: true})
	}
	var got []string
	for q.Len() > 0 {
		j, _ := q.Get(context.Background())
		got = append(got, j.Camera)
	}
	if strings.Join(got, "") != "bcdef" {
		t.Fatalf("order %v", got)
	}
}
