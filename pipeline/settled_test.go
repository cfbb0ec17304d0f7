package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// undescribed is a face found but not described: a box, no embedding (what a worker hands the
// tracker for a face of a published passage).
func undescribed(x float32) FaceDet {
	return FaceDet{FaceResult: dnn.FaceResult{Face: recognizers.Face{Box: recognizers.Box{X: x, Y: 200, W: 80, H: 80}, Score: 0.9}}}
}

// TestSettledTracks: once a passage is published its track is settled; faces found where it was
// last seen keep it going without embeddings (one event, its frames counted, no new track), a
// face elsewhere without an embedding starts nothing, and a settled face is due to be described
// again after Reverify.
func TestSettledTracks(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	alice := randEmb(rng)
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.Add(Person{ID: "alice", Name: "Alice", List: "residents", Embeddings: []recognizers.Embedding{alice}})
	var events []*event.Event
	tr := NewTracker("c", g, TrackerOptions{}, func(e *event.Event) { events = append(events, e) })

	if tr.Decided() {
		t.Fatal("decided with no one in view")
	}
	tr.Observe(obs(0, faceAt(near(rng, alice, 0.2), 500, 0.8)))
	if len(tr.Settled()) != 0 || tr.Decided() {
		t.Fatal("a track is settled (or decided) before its passage is published")
	}
	tr.Observe(obs(400*time.Millisecond, faceAt(near(rng, alice, 0.2), 510, 0.8)))
	if len(events) != 1 || events[0].Match == nil {
		t.Fatalf("alice not published on two matches: %+v", events)
	}
	st := tr.Settled()
	if len(st) != 1 || st[0].Described != 400*time.Millisecond || !tr.Decided() {
		t.Fatalf("settled %+v, decided %v", st, tr.Decided())
	}
	if x0 := st[0].Box[0]; x0 < 510.0/1280-0.001 || x0 > 510.0/1280+0.001 {
		t.Fatalf("settled box %v, want x0 %.3f", st[0].Box, 510.0/1280)
	}
	// She stays at the door: faces found where she was, not described.
	for i := 2; i < 8; i++ {
		tr.Observe(obs(time.Duration(i)*400*time.Millisecond, undescribed(float32(510+i*4))))
	}
	// A box-only face far from her track starts nothing.
	tr.Observe(obs(3200*time.Millisecond, undescribed(1000), undescribed(540)))
	if len(tr.faces) != 1 {
		t.Fatalf("%d tracks, want alice's only", len(tr.faces))
	}
	if tr.faces[0].hits != 9 || tr.faces[0].lastBox.X != 540 {
		t.Fatalf("alice's track: %d hits, last at %.0f; want 9 and 540", tr.faces[0].hits, tr.faces[0].lastBox.X)
	}
	if st := tr.Settled(); st[0].Described != 400*time.Millisecond {
		t.Fatalf("an undescribed face counted as described: %+v", st)
	}
	tr.Idle(6 * time.Second)
	tr.Idle(6400 * time.Millisecond)
	if len(events) != 1 || tr.Active() {
		t.Fatalf("after she left: %d events, active %v", len(events), tr.Active())
	}
}

// TestSettledOnly: a worker skips the shot and the embeddings only when every face found is
// where a settled track was last seen and that track was described within Reverify.
func TestSettledOnly(t *testing.T) {
	j := &Job{PTS: 2 * time.Second, Settled: []Settled{{Box: Frac{0.4, 0.4, 0.5, 0.6}, Described: 1500 * time.Millisecond}}}
	at := func(x, y float32) recognizers.Face { // in a 640×360 picture
		return recognizers.Face{Box: recognizers.Box{X: x * 640, Y: y * 360, W: 0.1 * 640, H: 0.2 * 360}}
	}
	if !settledOnly([]recognizers.Face{at(0.41, 0.41)}, j, 640, 360) {
		t.Error("the settled face where it was: described again")
	}
	if settledOnly([]recognizers.Face{at(0.41, 0.41), at(0.1, 0.1)}, j, 640, 360) {
		t.Error("a second face elsewhere (someone new) went undescribed")
	}
	if settledOnly([]recognizers.Face{at(0.7, 0.4)}, j, 640, 360) {
		t.Error("a face away from the settled track went undescribed")
	}
	j.PTS = 1500*time.Millisecond + Reverify
	if settledOnly([]recognizers.Face{at(0.41, 0.41)}, j, 640, 360) {
		t.Error("a settled face not verified for Reverify went undescribed")
	}
	if settledOnly([]recognizers.Face{at(0.41, 0.41)}, &Job{PTS: time.Second}, 640, 360) {
		t.Error("a face went undescribed without settled tracks")
	}
}

// TestStrangerRests: a track described RestAfter times without matching anyone rests: it is
// offered as settled with the face height that would make a better shot (Grow), faces found
// where it is keep it going undescribed, and it still becomes one event when the passage ends. A
// track with a match, one under RestAfter descriptions, or a tracker with RestAfter < 0 never
// rests; a worker describes a resting track's face again when it has grown to Grow.
func TestStrangerRests(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	alice, stranger := randEmb(rng), randEmb(rng)
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.Add(Person{ID: "alice", Name: "Alice", List: "residents", Embeddings: []recognizers.Embedding{alice}})
	for _, restAfter := range []int{0, -1} {
		var events []*event.Event
		tr := NewTracker("c", g, TrackerOptions{RestAfter: restAfter}, func(e *event.Event) { events = append(events, e) })
		for i := range 3 {
			if len(tr.Settled()) != 0 {
				t.Fatalf("RestAfter %d: resting after %d descriptions", restAfter, i)
			}
			tr.Observe(obs(time.Duration(i)*200*time.Millisecond, faceAt(near(rng, stranger, 0.1), float32(500+i*4), 0.5)))
		}
		st := tr.Settled()
		if restAfter < 0 {
			if len(st) != 0 || tr.Decided() {
				t.Fatalf("RestAfter -1: resting %+v, decided %v", st, tr.Decided())
			}
			continue
		}
		if !tr.Decided() {
			t.Fatal("a resting stranger alone in view: not decided")
		}
		if len(st) != 1 || st[0].Described != 400*time.Millisecond || st[0].Grow < 80.0/720*RestGrowth-0.001 || st[0].Grow > 80.0/720*RestGrowth+0.001 {
			t.Fatalf("a stranger described three times: settled %+v, want one resting, growing at %.3f", st, 80.0/720*RestGrowth)
		}
		for i := 3; i < 6; i++ {
			tr.Observe(obs(time.Duration(i)*200*time.Millisecond, undescribed(float32(500+i*4))))
		}
		if len(tr.faces) != 1 || tr.faces[0].hits != 6 || tr.faces[0].descs != 3 {
			t.Fatalf("the resting track: %d tracks, %d hits, %d described; want 1, 6, 3", len(tr.faces), tr.faces[0].hits, tr.faces[0].descs)
		}
		// A worker: the face where the stranger rests is left, a bigger one there described.
		j := &Job{PTS: 1200 * time.Millisecond, Settled: tr.Settled()}
		face := func(h float32) recognizers.Face {
			return recognizers.Face{Box: recognizers.Box{X: 520, Y: 200, W: h, H: h}}
		}
		if !settledOnly([]recognizers.Face{face(84)}, j, 1280, 720) {
			t.Error("the resting stranger's face was described again before Reverify")
		}
		if settledOnly([]recognizers.Face{face(104)}, j, 1280, 720) {
			t.Error("the resting stranger's face, grown by a quarter, went undescribed")
		}
		tr.Idle(3 * time.Second)
		tr.Idle(3400 * time.Millisecond)
		if len(events) != 1 || events[0].Match != nil || tr.Active() {
			t.Fatalf("after the stranger left: %+v, active %v", events, tr.Active())
		}
	}
	// Alice, matched once of three (a poor first look): her track keeps being described.
	tr := NewTracker("c", g, TrackerOptions{}, func(*event.Event) {})
	first := near(rng, alice, 0.3) // alice + 0.3u: matched
	worse := append(recognizers.Embedding(nil), first...)
	for i := range worse {
		worse[i] += first[i] - alice[i] // alice + 0.6u: no match, 0.3 from her first look
	}
	tr.Observe(obs(0, faceAt(first, 500, 0.5)))
	tr.Observe(obs(200*time.Millisecond, faceAt(worse, 504, 0.5)))
	tr.Observe(obs(400*time.Millisecond, faceAt(worse, 508, 0.5)))
	if st := tr.Settled(); len(st) != 0 || len(tr.faces) != 1 {
		t.Fatalf("a track with a match rests, or split: settled %+v, %d tracks", st, len(tr.faces))
	}
}
