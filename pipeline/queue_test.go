package pipeline

import (
	"context"
	"strings"
	"testing"
)

// TestDropQueuePriority: door cameras' frames are taken first, and a full queue drops the other
// cameras' oldest frames before any door camera's.
func TestDropQueuePriority(t *testing.T) {
	var dropped []string
	q := newDropQueue(4, func(j *Job) { dropped = append(dropped, j.Camera) })
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
