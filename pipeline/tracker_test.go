package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// These tests use dlib's space: 128 values, Euclidean.
func randEmb(rng *rand.Rand) recognizers.Embedding {
	e := make(recognizers.Embedding, space.DlibV1.Dims)
	for i := range e {
		e[i] = float32(rng.NormFloat64()) * 0.09 // dlib descriptors: norm ~1, different people ~0.9 apart
	}
	return e
}

func near(rng *rand.Rand, e recognizers.Embedding, d float32) recognizers.Embedding {
	n := randEmb(rng)
	norm := recognizers.Distance(n, make(recognizers.Embedding, len(n)))
	out := append(recognizers.Embedding(nil), e...)
	for i := range out {
		out[i] += n[i] / norm * d
	}
	return out
}

func faceAt(e recognizers.Embedding, x, q float32) FaceDet {
	return FaceDet{FaceResult: dnn.FaceResult{
		Face:      recognizers.Face{Box: recognizers.Box{X: x, Y: 200, W: 80, H: 80}, Score: 0.95},
		Quality:   recognizers.Quality{Score: q},
		Embedding: e,
	}, Crop: &Crop{W: 2, H: 2, BGR: make([]byte, 12)}}
}

func obs(pts time.Duration, faces ...FaceDet) *Observation {
	return &Observation{Camera: "c", PTS: pts, Time: time.Unix(1000, 0).Add(pts), Width: 1280, Height: 720, Kind: KindFace, Faces: faces}
}

func TestOneEventPerPassage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	alice, bob, stranger := randEmb(rng), randEmb(rng), randEmb(rng)
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.Add(Person{ID: "alice", Name: "Alice", List: "residents", Embeddings: []recognizers.Embedding{alice}})
	g.Add(Person{ID: "bob", Name: "Bob", List: "residents", Embeddings: []recognizers.Embedding{bob}})
	var events []*event.Event
	tr := NewTracker("c", g, TrackerOptions{}, func(e *event.Event) { events = append(events, e) })

	// Alice and a stranger walk past together for 2 s at 5 fps. In this camera Alice looks 0.45
	// from her enrolment template (matches, but not close enough to publish on one), and her
	// detections differ from each other only a little.
	aliceHere := near(rng, alice, 0.45)
	for i := 0; i < 10; i++ {
		pts := time.Duration(i) * 200 * time.Millisecond
		tr.Observe(obs(pts,
			faceAt(near(rng, aliceHere, 0.05), float32(100+i*60), float32(i)/10),
			faceAt(near(rng, stranger, 0.1), float32(900-i*60), 0.5)))
	}
	if len(events) != 1 || events[0].Match == nil || events[0].Match.PersonID != "alice" || events[0].Frames != 2 {
		t.Fatalf("after 2 matches: %d events %+v", len(events), events)
	}
	if !tr.Active() {
		t.Fatal("tracks ended while people are in view")
	}
	// Time passes with nobody in view: the stranger's passage ends, published unmatched, with its
	// best shot; Alice's is not published twice.
	tr.Expire(5 * time.Second)
	if len(events) != 1 {
		t.Fatal("a passage ended without being missed from analysed frames")
	}
	tr.Idle(5 * time.Second)
	tr.Idle(5200 * time.Millisecond)
	if len(events) != 2 || events[1].Match != nil || events[1].Frames != 10 || events[1].Embedding == nil || len(events[1].Snapshot) == 0 {
		t.Fatalf("at expiry: %d events, last %+v", len(events), events[len(events)-1])
	}
	if tr.Active() {
		t.Fatal("tracks survived expiry")
	}
	// Bob passes once, very close to his template: one frame is never enough (a door needs the
	// passage's frames to agree); published on the second.
	tr.Observe(obs(6*time.Second, faceAt(near(rng, bob, 0.2), 500, 0.9)))
	if len(events) != 2 {
		t.Fatalf("published on one frame: %+v", events[len(events)-1])
	}
	tr.Observe(obs(6200*time.Millisecond, faceAt(near(rng, bob, 0.2), 520, 0.9)))
	if len(events) != 3 || events[2].Match.PersonID != "bob" || events[2].Match.Votes != 2 {
		t.Fatalf("bob: %+v", events[len(events)-1])
	}
	// Alice again after a gap: a new passage, a new event.
	tr.Observe(obs(9*time.Second, faceAt(near(rng, alice, 0.2), 300, 0.9)))
	tr.Observe(obs(9200*time.Millisecond, faceAt(near(rng, alice, 0.2), 320, 0.9)))
	if len(events) != 4 || events[3].Match.PersonID != "alice" || events[3].Track == events[0].Track {
		t.Fatalf("alice's second passage: %+v", events[len(events)-1])
	}
}

func TestBestShotAndMajority(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	p := randEmb(rng)
	var events []*event.Event
	tr := NewTracker("c", nil, TrackerOptions{}, func(e *event.Event) { events = append(events, e) })
	qs := []float32{0.2, 0.9, 0.5}
	for i, q := range qs {
		tr.Observe(obs(time.Duration(i)*300*time.Millisecond, faceAt(near(rng, p, 0.15), float32(200+i*50), q)))
	}
	tr.Flush()
	if len(events) != 1 || events[0].Quality != 0.9 || events[0].Box.X != 250 {
		t.Fatalf("best shot: %+v", events)
	}
}

func plateObs(pts time.Duration, text string, valid bool, conf float32) *Observation {
	return &Observation{Camera: "g", PTS: pts, Time: time.Unix(0, 0).Add(pts), Width: 1280, Kind: KindPlate,
		Plates: []PlateDet{{Plate: dnn.Plate{Text: text, Valid: valid, Color: "blue",
			Box: recognizers.Box{X: 600, Y: 500, W: 120, H: 40}, Chars: []event.CharConf{{Char: "x", Conf: conf}}}}}}
}

func TestPlateVoting(t *testing.T) {
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.AddPlate(ListedPlate{Text: "粤B12345", List: "blacklist"})
	var events []*event.Event
	tr := NewTracker("g", g, TrackerOptions{}, func(e *event.Event) { events = append(events, e) })
	tr.Observe(plateObs(0, "粤B1Z345", false, 0.6)) // an OCR confusion
	tr.Observe(plateObs(200*time.Millisecond, "粤B12345", true, 0.9))
	if len(events) != 0 {
		t.Fatal("published on one read")
	}
	tr.Observe(plateObs(400*time.Millisecond, "粤B12345", true, 0.95))
	if len(events) != 1 || events[0].Plate.Text != "粤B12345" || events[0].Plate.Votes != 2 || events[0].Match == nil || events[0].Match.List != "blacklist" {
		t.Fatalf("plate event: %+v", events)
	}
	tr.Flush()
	if len(events) != 1 {
		t.Fatalf("%d events for one car", len(events))
	}
	// A single valid read with no confirmation is published when the passage ends.
	tr.Observe(plateObs(10*time.Second, "京AF0236", true, 0.9))
	tr.Flush()
	if len(events) != 2 || events[1].Plate.Text != "京AF0236" || events[1].Match != nil {
		t.Fatalf("single read: %+v", events[len(events)-1])
	}
}

func TestGalleryMarginRefusesLookalikes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	a := randEmb(rng)
	b := near(rng, a, 0.05) // a twin
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.Add(Person{ID: "a", Embeddings: []recognizers.Embedding{a}})
	g.Add(Person{ID: "b", Embeddings: []recognizers.Embedding{b}})
	q := near(rng, a, 0.2)
	if m := g.MatchFace(q); m != nil {
		t.Fatalf("matched %+v between twins", m)
	}
	far := randEmb(rng)
	if m := g.MatchFace(far); m != nil {
		t.Fatalf("stranger matched %+v", m)
	}
	path := t.TempDir() + "/g.json"
	g.AddPlate(ListedPlate{Text: "粤B·12345", List: "x"})
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	g2 := NewGallery(MatchOptions{Space: space.DlibV1})
	if err := g2.Load(path); err != nil || len(g2.People()) != 2 || g2.MatchPlate("粤B12345") == nil {
		t.Fatalf("reload: %v %d", err, len(g2.People()))
	}
}

// TestGalleryOnePersonOnSeveralLists: a resident whose face is both in the gallery file and
// among the door credentials is one person, not two look-alikes; the match names the access
// list (doors open), and a watch list where one names them too (the alert wins).
func TestGalleryOnePersonOnSeveralLists(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	a, b := randEmb(rng), randEmb(rng)
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.Add(Person{ID: "wang", List: "residents", Embeddings: []recognizers.Embedding{a}})
	g.Add(Person{ID: "li", List: "residents", Embeddings: []recognizers.Embedding{b}})
	g.SetList(access.AccessList, []Person{{ID: "wang", Embeddings: []recognizers.Embedding{a}}})
	if m := g.MatchFace(near(rng, a, 0.1)); m == nil || m.PersonID != "wang" || m.List != access.AccessList {
		t.Fatalf("resident with door credentials: %+v", m)
	}
	g.SetList("watchlist", []Person{{ID: "wang", Embeddings: []recognizers.Embedding{a}}})
	if m := g.MatchFace(near(rng, a, 0.1)); m == nil || m.List != "watchlist" {
		t.Fatalf("watch-listed resident: %+v", m)
	}
}

// TestTrackDoesNotHopBetweenPeople: in a group passing one after another, a distant small face
// seen once and a near one seen next, with embeddings the lenient track distance would join, are
// two passages: a face does not grow 2.4× between two frames.
func TestTrackDoesNotHopBetweenPeople(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	far, close := randEmb(rng), randEmb(rng)
	var events []*event.Event
	tr := NewTracker("c", nil, TrackerOptions{SameFace: 10}, func(e *event.Event) { events = append(events, e) })
	small := faceAt(far, 400, 0.5)
	small.Box.W, small.Box.H = 43, 43
	tr.Observe(obs(0, small))
	big := faceAt(close, 480, 0.5)
	big.Box.W, big.Box.H = 103, 103
	tr.Observe(obs(800*time.Millisecond, big))
	tr.Observe(obs(1600*time.Millisecond, faceAt(close, 560, 0.5)))
	tr.Flush()
	if len(events) != 2 {
		t.Fatalf("%d passages, want 2 (the small face's and the near one's)", len(events))
	}
}

// TestPlateVotingByPosition: three frames of one car, no two read alike and none right; the
// passage's event carries the plate their characters spell position by position.
func TestPlateVotingByPosition(t *testing.T) {
	var events []*event.Event
	tr := NewTracker("g", nil, TrackerOptions{}, func(e *event.Event) { events = append(events, e) })
	for i, r := range []struct {
		text string
		conf float32
	}{{"皖AF0236", 0.6}, {"京AF0235", 0.9}, {"京AF0Z36", 0.5}} {
		o := plateObs(time.Duration(i)*200*time.Millisecond, r.text, true, r.conf)
		o.Plates[0].Chars = nil
		for _, c := range r.text {
			o.Plates[0].Chars = append(o.Plates[0].Chars, event.CharConf{Char: string(c), Conf: r.conf})
		}
		tr.Observe(o)
	}
	tr.Flush()
	if len(events) != 1 || events[0].Plate.Text != "京AF0236" || !events[0].Plate.Valid || len(events[0].Plate.Chars) != 7 {
		t.Fatalf("voted plate: %+v", events)
	}
}

// A face described on a scaled-up sub-stream picture (the main stream's shot missed) identifies
// only at the space's VeryLikely distance: such embeddings put strangers near residents.
func TestCoarseShotsIdentifyOnlyWhenVeryLikely(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	alice := randEmb(rng)
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.Add(Person{ID: "alice", Name: "Alice", List: "residents", Embeddings: []recognizers.Embedding{alice}})
	passage := func(coarse bool, d float32, at time.Duration) []*event.Event {
		var events []*event.Event
		tr := NewTracker("c", g, TrackerOptions{}, func(e *event.Event) { events = append(events, e) })
		here := near(rng, alice, d)
		for i := 0; i < 4; i++ {
			o := obs(at+time.Duration(i)*200*time.Millisecond, faceAt(near(rng, here, 0.03), float32(300+i*20), 0.8))
			o.Coarse = coarse
			tr.Observe(o)
		}
		tr.Flush()
		return events
	}
	between := (space.DlibV1.VeryLikely + space.DlibV1.Possible) / 2 // 0.45: Possible, not VeryLikely
	if ev := passage(false, between, 0); len(ev) != 1 || ev[0].Match == nil || ev[0].Match.PersonID != "alice" {
		t.Fatalf("main-stream shots at %.2f: %+v", between, ev)
	}
	if ev := passage(true, between, 10*time.Second); len(ev) != 1 || ev[0].Match != nil {
		t.Fatalf("coarse shots at %.2f identified: %+v", between, ev[0].Match)
	}
	if ev := passage(true, space.DlibV1.VeryLikely*0.6, 20*time.Second); len(ev) != 1 || ev[0].Match == nil || ev[0].Match.PersonID != "alice" {
		t.Fatalf("coarse shots well inside VeryLikely: %+v", ev)
	}
}

// A coarse shot (scaled-up sub-stream picture) whose embedding falls outside SameFace of the
// track's continues the track where it is, and does not replace the track's fine embedding; a
// face elsewhere is still another passage.
func TestCoarseShotContinuesTrackByPosition(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	alice, bob := randEmb(rng), randEmb(rng)
	far := near(rng, alice, 2*space.DlibV1.Track)
	var events []*event.Event
	tr := NewTracker("c", nil, TrackerOptions{SameFace: space.DlibV1.Track}, func(e *event.Event) { events = append(events, e) })
	tr.Observe(obs(0, faceAt(near(rng, alice, 0.03), 300, 0.8)))
	o := obs(200*time.Millisecond, faceAt(far, 305, 0.5))
	o.Coarse = true
	tr.Observe(o)
	tr.Observe(obs(400*time.Millisecond, faceAt(near(rng, alice, 0.03), 310, 0.8)))
	o = obs(600*time.Millisecond, faceAt(bob, 900, 0.5))
	o.Coarse = true
	tr.Observe(o)
	tr.Flush()
	if len(events) != 2 || events[0].Frames != 3 || events[1].Frames != 1 {
		for _, e := range events {
			t.Logf("track %d: %d frames at %.0f", e.Track, e.Frames, e.Box.X)
		}
		t.Fatalf("%d passages, want 2 (alice's 3 frames, one coarse; bob's elsewhere)", len(events))
	}
}
