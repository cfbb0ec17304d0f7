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
