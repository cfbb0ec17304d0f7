package access

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// busFunc delivers what the test publishes to the one subscriber.
type busFunc struct{ fn func(string, []byte) }

func (b *busFunc) Subscribe(_ string, fn func(string, []byte)) (func(), error) {
	b.fn = fn
	return func() {}, nil
}

// TestAutoUnlockOnlyFromAccessTemplates: a face matched in the access list at a door's camera
// opens the door; the same person id matched from a watch list (or any other list) does not.
func TestAutoUnlockOnlyFromAccessTemplates(t *testing.T) {
	e, _, admin, must := testEngine(t)
	ctx := context.Background()
	must(e.AddPerson(ctx, admin, "wang", "Wang Fang", "resident"))
	if _, err := e.AddDoor(ctx, admin, Door{ID: "b1", Camera: "gate"}); err != nil {
		t.Fatal(err)
	}
	must(e.AddRule(ctx, admin, "b1", "person", "wang", ""))
	_, _, err := e.AddCredential(ctx, admin, "wang", NewCredential{Kind: KindCard, Value: "CARD-WANG"})
	must(err)
	sp := space.DefaultSpace
	_, err = e.AddFaceTemplate(ctx, admin, "wang", FaceTemplate{Embedding: SyntheticFace(sp, "wang"), Quality: 0.9, Liveness: 0.9, Consent: "signed form (test)"})
	must(err)
	bus := &busFunc{}
	stop, err := e.FollowFaces(ctx, bus, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	must(err)
	defer stop()
	publish := func(list string) {
		ev := &event.Event{ID: event.NewID(time.Now()), Camera: "gate", Kind: event.KindFace, Time: time.Now(), Liveness: 0.9,
			Match: &event.Match{PersonID: "wang", List: list, Distance: 0.2, Votes: 2}, Embedding: event.PackVector(SyntheticFace(sp, "wang")), Model: sp.Name}
		bus.fn(ev.Subject(), ev.Pack())
	}
	publish("watchlist")
	if cmds := e.Commands(ctx, "b1", 300*time.Millisecond); len(cmds) != 0 {
		t.Fatalf("a watch-list match opened the door: %+v", cmds)
	}
	publish(AccessList)
	if cmds := e.Commands(ctx, "b1", time.Second); len(cmds) != 1 || cmds[0].PersonID != "wang" {
		t.Fatalf("an access match: %+v", cmds)
	}
}

// TestFollowPlates: a car read once at a barrier's camera, sure of every character, opens it and
// parks the car; read once unsurely, or at a door whose camera opens it for faces only, nothing
// happens; a face at the barrier's camera does not open it.
func TestFollowPlates(t *testing.T) {
	e, _, admin, must := testEngine(t)
	ctx := context.Background()
	must(e.AddPerson(ctx, admin, "wang", "Wang Fang", "resident"))
	_, _, err := e.AddCredential(ctx, admin, "wang", NewCredential{Kind: KindPlate, Value: "粤B12345"})
	must(err)
	for _, d := range []Door{{ID: "barrier", Camera: "gate-cam", Area: "p1", CameraOpens: CameraPlates}, {ID: "lobby", Camera: "gate-cam"}} {
		if _, err := e.AddDoor(ctx, admin, d); err != nil {
			t.Fatal(err)
		}
		must(e.AddRule(ctx, admin, d.ID, "person", "wang", ""))
	}
	bus := &busFunc{}
	stop, err := e.FollowPlates(ctx, bus, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	must(err)
	defer stop()
	publish := func(text string, conf float32) {
		chars := []event.CharConf{}
		for _, r := range text {
			chars = append(chars, event.CharConf{Char: string(r), Conf: conf})
		}
		ev := &event.Event{ID: event.NewID(time.Now()), Camera: "gate-cam", Kind: event.KindPlate, Time: time.Now(), Frames: 1,
			Plate: &event.PlateRead{Text: text, Color: "blue", Chars: chars, Valid: true, Votes: 1}}
		bus.fn(ev.Subject(), ev.Pack())
	}
	publish("粤B12345", 0.7)
	if cmds := e.Commands(ctx, "barrier", 300*time.Millisecond); len(cmds) != 0 {
		t.Fatalf("an unsure single read opened the barrier: %+v", cmds)
	}
	publish("粤B12345", 0.99)
	if cmds := e.Commands(ctx, "barrier", time.Second); len(cmds) != 1 || cmds[0].PersonID != "wang" {
		t.Fatalf("a sure read of wang's car: %+v", cmds)
	}
	if cmds := e.Commands(ctx, "lobby", 300*time.Millisecond); len(cmds) != 0 {
		t.Fatalf("a plate opened a door whose camera opens it for faces: %+v", cmds)
	}
	if ps, err := e.Parking(ctx); err != nil || len(ps) != 1 || ps[0].Cars != 1 {
		t.Fatalf("parking %+v %v", ps, err)
	}
	if got := e.DoorsWithCamera("gate-cam"); len(got) != 1 || got[0] != "lobby" {
		t.Fatalf("doors a face at the barrier's camera opens: %v", got)
	}
}
