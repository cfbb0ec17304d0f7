package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

func TestPrincipalsTokens(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	s := NewPrincipals(pool, time.Millisecond)
	if _, _, err := s.Create(ctx, "eve", "superuser"); !errors.Is(err, ErrBadRole) {
		t.Fatalf("bad role: %v", err)
	}
	p, token, err := s.Create(ctx, "Inspector Li", RoleInvestigator)
	if err != nil || !strings.HasPrefix(token, "vgl_") {
		t.Fatalf("%v %q", err, token)
	}
	var stored []byte
	pool.QueryRow(ctx, `SELECT token_hash FROM principals WHERE id = $1`, p.ID).Scan(&stored)
	if strings.Contains(string(stored), token) || len(stored) != 32 {
		t.Fatal("token stored in the clear")
	}
	got, err := s.Authenticate(ctx, token)
	if err != nil || got.Name != "Inspector Li" || got.Role != RoleInvestigator {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	for _, bad := range []string{"", "vgl_", token + "x", "Bearer " + token, "vgl_' OR 1=1 --"} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if n, err := s.Revoke(ctx, "Inspector Li"); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil {
		t.Fatalf("list: %+v %v", list, err)
	}
}

// TestRevocationNotLost: a revocation heard while a lookup is on its way to the database wins over
// the lookup's answer (not cached, not returned); one made while the process was not listening
// reaches the hooks once it listens again.
func TestRevocationNotLost(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	node, other := NewPrincipals(pool, time.Hour), NewPrincipals(pool, time.Hour)
	p, token, err := node.Create(ctx, "patrol 7", RolePatrol)
	if err != nil {
		t.Fatal(err)
	}
	node.afterLookup = func() {
		node.afterLookup = nil
		if _, err := other.Revoke(ctx, "patrol 7"); err != nil {
			t.Error(err)
		}
		node.revoked([]int64{p.ID}) // the NOTIFY, heard while the lookup was out
	}
	if _, err := node.Authenticate(ctx, token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a token revoked during its lookup: %v", err)
	}
	if !node.IsRevoked(p.ID) {
		t.Fatal("IsRevoked false after the revocation was heard")
	}
	// Revoked by another process while this one was not listening.
	q, _, _ := other.Create(ctx, "operator 3", RoleOperator)
	if _, err := other.Revoke(ctx, "operator 3"); err != nil {
		t.Fatal(err)
	}
	heard := make(chan int64, 4)
	node.OnRevoke(func(id int64) { heard <- id })
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go node.Watch(wctx, slog.New(slog.DiscardHandler))
	select {
	case id := <-heard:
		if id != q.ID {
			t.Fatalf("heard %d, want %d (and not %d, heard before)", id, q.ID, p.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a revocation made while not listening never reached the hooks")
	}
}
