package access

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestChangeCommitsWithItsAudit: an admin change and its audit row commit together. When the
// audit cannot be written (here: its chain was cut, so appends are refused), the change is not
// made either.
func TestChangeCommitsWithItsAudit(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	trail := audit.New(pool, filepath.Join(t.TempDir(), "anchor"))
	e, err := NewEngine(ctx, pool, trail, testenv.Secret())
	if err != nil {
		t.Fatal(err)
	}
	admin := auth.Actor{Name: "estate office", Role: "admin"}
	if err := e.AddPerson(ctx, admin, "wang", "Wang Fang", "resident"); err != nil {
		t.Fatal(err)
	}
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM audit WHERE action = 'person.add'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d audit rows for the change", n)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE audit DISABLE TRIGGER audit_append_only; DELETE FROM audit;
		DELETE FROM audit_head; ALTER TABLE audit ENABLE TRIGGER audit_append_only`); err != nil {
		t.Fatal(err)
	}
	err = e.AddPerson(ctx, admin, "li", "Li Na", "resident")
	if !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("a change with an unwritable audit: %v", err)
	}
	var exists bool
	pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM people WHERE id = 'li')`).Scan(&exists)
	if exists {
		t.Fatal("the change was committed without its audit row")
	}
}
