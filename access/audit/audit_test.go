package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

func TestAuditChainDetectsEditsAndDeletions(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	anchor := filepath.Join(t.TempDir(), "audit.anchor")
	a := New(pool, anchor)
	// 200 entries from 20 goroutines: group commit, no gaps, no forks.
	var wg sync.WaitGroup
	seqs := make(chan int64, 200)
	for g := range 20 {
		wg.Go(func() {
			for i := range 10 {
				n := i
				seq, err := a.Append(ctx, Entry{Actor: fmt.Sprintf("inv%d", g), Role: "investigator", Action: "search.plates",
					Reason: "case 7", Detail: json.RawMessage(fmt.Sprintf(`{"q":"粤B*%d'; DROP TABLE audit;--"}`, i)), Results: &n})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	got := map[int64]bool{}
	for s := range seqs {
		got[s] = true
	}
	if len(got) != 200 {
		t.Fatalf("%d distinct seqs for 200 appends", len(got))
	}
	verify := func() *Report {
		t.Helper()
		rep, err := Verify(ctx, pool, anchor, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(); !rep.OK() || rep.Rows != 200 {
		t.Fatalf("intact chain: %+v", rep)
	}
	if _, err := a.Append(ctx, Entry{Actor: "x", Action: "y", Detail: json.RawMessage(`{bad`)}); err == nil {
		t.Fatal("invalid detail accepted")
	}
	// The trigger refuses edits through SQL...
	if _, err := pool.Exec(ctx, `UPDATE audit SET reason = 'nothing to see' WHERE seq = 50`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("update allowed: %v", err)
	}
	// ...and with it disabled (as a superuser could), the chain tells.
	tamper := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `ALTER TABLE audit DISABLE TRIGGER audit_append_only; `+sql+`; ALTER TABLE audit ENABLE TRIGGER audit_append_only`); err != nil {
			t.Fatal(err)
		}
	}
	expectProblem := func(what, want string) {
		t.Helper()
		rep := verify()
		if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
			t.Fatalf("%s: verify found %v, want %q", what, rep.Problems, want)
		}
	}
	tamper(`UPDATE audit SET reason = 'nothing to see' WHERE seq = 50`)
	expectProblem("edited reason", "row 50 was altered")
	tamper(`UPDATE audit SET reason = 'case 7' WHERE seq = 50`)
	if rep := verify(); !rep.OK() {
		t.Fatalf("restored: %v", rep.Problems)
	}
	tamper(`UPDATE audit SET result_count = 0 WHERE seq = 120`)
	expectProblem("edited count", "row 120 was altered")
	tamper(`UPDATE audit SET result_count = (SELECT result_count FROM audit WHERE seq = 121) WHERE seq = 120`) // not the original: still broken
	tamper(`DELETE FROM audit WHERE seq = 120`)
	expectProblem("deleted row", "rows 120 to 120 are missing")
	// Deleting the newest rows keeps the chain itself consistent: audit_head catches it, and the
	// anchor file catches it even when audit_head is rewritten too.
	tamper(`DELETE FROM audit WHERE seq >= 199`)
	expectProblem("deleted tail", "audit_head says 200")
	if _, err := pool.Exec(ctx, `UPDATE audit_head SET seq = 198, hash = (SELECT hash FROM audit WHERE seq = 198)`); err != nil {
		t.Fatal(err)
	}
	expectProblem("deleted tail and head", "anchor file says row 200")
}
