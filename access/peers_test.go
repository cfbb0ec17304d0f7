package access

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// siteBus is the bus between two engines of a test: what one publishes, every subscriber gets
// at once; claims are one map.
type siteBus struct {
	mu     sync.Mutex
	subs   []func(string, []byte)
	claims map[string]bool
}

func (b *siteBus) Publish(subject string, data []byte) error {
	b.mu.Lock()
	subs := append([]func(string, []byte){}, b.subs...)
	b.mu.Unlock()
	for _, fn := range subs {
		fn(subject, data)
	}
	return nil
}

func (b *siteBus) Subscribe(subject string, fn func(string, []byte)) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, func(s string, d []byte) {
		if strings.HasPrefix(s, strings.TrimSuffix(subject, ">")) {
			fn(s, d)
		}
	})
	return func() {}, nil
}

func (b *siteBus) Claim(key string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.claims[key] {
		return false, nil
	}
	b.claims[key] = true
	return true, nil
}

// TestDoorsAcrossNodes: two engines of one site (one database, one bus). An unlock queued on
// node A reaches a controller long-polling node B, and only once; anti-passback recorded by a
// grant on A refuses the same pass on B; a card shown through B pairs with the face A's camera
// saw for a two-factor door.
func TestDoorsAcrossNodes(t *testing.T) {
	pool := testenv.Pool(t)
	secret := testenv.Secret() // every node of a site keys credentials with the same secret
	engine := func() *Engine {
		e, err := NewEngine(context.Background(), pool, audit.New(pool, filepath.Join(t.TempDir(), "anchor")), secret)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := engine(), engine()
	admin := auth.Actor{Name: "office", Role: "admin"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	bus := &siteBus{claims: map[string]bool{}}
	for id, e := range map[string]*Engine{"node-a": a, "node-b": b} {
		stop, err := e.Share(Peers{Self: id, Publish: bus.Publish, Subscribe: bus.Subscribe, Claim: bus.Claim})
		must(err)
		defer stop()
	}
	ctx := context.Background()
	must(a.AddPerson(ctx, admin, "wang", "Wang Fang", "resident"))
	_, err := a.AddDoor(ctx, admin, Door{ID: "lobby-in", Area: "lobby", Direction: "in", AntiPassback: true})
	must(err)
	_, err = a.AddDoor(ctx, admin, Door{ID: "vault", Camera: "vault-cam"})
	must(err)
	must(a.SetFacePolicy(ctx, admin, "vault", PolicyTwoFactor))
	for _, d := range []string{"lobby-in", "vault"} {
		must(a.AddRule(ctx, admin, d, "person", "wang", ""))
	}
	_, _, err = a.AddCredential(ctx, admin, "wang", NewCredential{Kind: KindCard, Value: "CARD-WANG"})
	must(err)
	sp := space.DefaultSpace
	_, err = a.AddFaceTemplate(ctx, admin, "wang", FaceTemplate{Embedding: SyntheticFace(sp, "wang"), Quality: 0.9, Liveness: 0.9, Consent: "signed form (test)"})
	must(err)
	must(b.Reload(ctx)) // what Watch does on the other node when PostgreSQL says the data changed

	// An unlock on A, delivered by B's long poll, once.
	cmd, err := a.RemoteUnlock(ctx, admin, "vault", "visitor at the intercom")
	must(err)
	got := b.Commands(ctx, "vault", time.Second)
	if len(got) != 1 || got[0].ID != cmd.ID {
		t.Fatalf("node b's controller got %+v, want the unlock decided on a", got)
	}
	if again := a.Commands(ctx, "vault", 200*time.Millisecond); len(again) != 0 {
		t.Fatalf("node a delivered the unlock a second time: %+v", again)
	}

	// Anti-passback: in through A; in again through B is refused.
	card := Presented{Kind: KindCard, Value: "CARD-WANG"}
	if d, err := a.Decide(ctx, "lobby-in", card, "n1"); err != nil || !d.Grant {
		t.Fatalf("first entry on a: %+v %v", d, err)
	}
	if d, err := b.Decide(ctx, "lobby-in", card, "n2"); err != nil || d.Grant || d.Reason != DenyAntiPassback {
		t.Fatalf("second entry on b: %+v %v, want %s", d, err, DenyAntiPassback)
	}

	// Two factors: the card through B waits; the face at the camera on A completes the pair.
	if d, err := b.Decide(ctx, "vault", card, "n3"); err != nil || d.Reason != DenySecondFactor {
		t.Fatalf("card on b at a two-factor door: %+v %v", d, err)
	}
	face := CameraFace{Person: "wang", Votes: 3, Liveness: 0.9, Embedding: SyntheticFace(sp, "wang"), Model: sp.Name}
	if d, err := a.AutoUnlock(ctx, "vault", face, "ev-1", time.Now()); err != nil || !d.Grant {
		t.Fatalf("face on a after the card on b: %+v %v", d, err)
	}
	// The pair is used up on both nodes.
	if d, err := b.AutoUnlock(ctx, "vault", face, "ev-2", time.Now()); err != nil || d.Grant {
		t.Fatalf("the same card opened twice: %+v %v", d, err)
	}
}
