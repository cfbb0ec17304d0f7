package auth

import (
	"context"
	"errors"
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
