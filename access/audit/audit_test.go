package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

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
		rep, err := Verify(ctx, pool, VerifyOptions{Anchor: anchor})
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

// entries appends n entries.
func entries(t *testing.T, a *Chain, n int) {
	t.Helper()
	for i := range n {
		if _, err := a.Append(context.Background(), Entry{Actor: "inv", Role: "investigator", Action: "search.faces",
			Reason: "case 9", Detail: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChainCannotBeCutShort: someone with the database cuts the chain's tail (the trigger
// disabled, the rows and the head rewritten, or TRUNCATE). TRUNCATE is refused; the cut chain is
// refused further appends; verify fails on it, and when the anchor file is missing.
func TestChainCannotBeCutShort(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	anchor := filepath.Join(t.TempDir(), "audit.anchor")
	a := New(pool, anchor)
	entries(t, a, 20)
	if _, err := pool.Exec(ctx, `TRUNCATE audit`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("TRUNCATE: %v", err)
	}
	// The table's owner disables the trigger and cuts the last five rows, head included.
	if _, err := pool.Exec(ctx, `ALTER TABLE audit DISABLE TRIGGER audit_append_only;
		DELETE FROM audit WHERE seq > 15;
		UPDATE audit_head SET seq = 15, hash = (SELECT hash FROM audit WHERE seq = 15);
		ALTER TABLE audit ENABLE TRIGGER audit_append_only`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, Entry{Actor: "x", Role: "admin", Action: "after.the.cut"}); !errors.Is(err, ErrTampered) {
		t.Fatalf("append to a cut chain: %v, want ErrTampered", err)
	}
	// A process started after the cut knows the anchor from its file.
	if _, err := New(pool, anchor).Append(ctx, Entry{Actor: "x", Role: "admin", Action: "after.restart"}); !errors.Is(err, ErrTampered) {
		t.Fatalf("append after a restart: %v, want ErrTampered", err)
	}
	rep, err := Verify(ctx, pool, VerifyOptions{Anchor: anchor})
	if err != nil || rep.OK() {
		t.Fatalf("verify of the cut chain: %+v %v", rep, err)
	}
	// Without the anchor file the tail cannot be checked: verify says so instead of passing.
	os.Remove(anchor)
	rep, err = Verify(ctx, pool, VerifyOptions{Anchor: anchor})
	if err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Problems, " "), "anchor file is missing") {
		t.Fatalf("verify without the anchor: %+v %v", rep, err)
	}
	// An empty anchor file (the way a crash without fsync left one) is a problem, not an error.
	os.WriteFile(anchor, nil, 0o600)
	rep, err = Verify(ctx, pool, VerifyOptions{Anchor: anchor})
	if err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Problems, " "), "malformed") {
		t.Fatalf("verify with an empty anchor: %+v %v", rep, err)
	}
	// Deleting the anchor does not quietly bless the cut: the next process adopts the head in the
	// open, with a row saying so that verify reports.
	os.Remove(anchor)
	b := New(pool, anchor)
	if _, err := b.Append(ctx, Entry{Actor: "x", Role: "admin", Action: "after.deletion"}); err != nil {
		t.Fatal(err)
	}
	var action, detail string
	pool.QueryRow(ctx, `SELECT action, detail FROM audit WHERE seq = 16`).Scan(&action, &detail)
	if action != AnchorAdopted || !strings.Contains(detail, `"head":15`) || !strings.Contains(detail, "missing") {
		t.Fatalf("row 16: %s %s, want the adoption of head 15", action, detail)
	}
	rep, err = Verify(ctx, pool, VerifyOptions{Anchor: anchor})
	if err != nil || !rep.OK() || len(rep.Adopted) != 1 || !strings.Contains(rep.Adopted[0], "row 16") {
		t.Fatalf("verify after adoption: %+v %v", rep, err)
	}
	if _, err := b.Append(ctx, Entry{Actor: "x", Role: "admin", Action: "again"}); err != nil {
		t.Fatal(err)
	}
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM audit WHERE action = $1`, AnchorAdopted).Scan(&n)
	if n != 1 {
		t.Fatalf("%d adoption rows, want 1", n)
	}
}

// TestSignedCheckpoints: a checkpoint signs the head with a key kept outside the database; verify
// checks each signature, finds a chain cut below a signed row even with the anchor gone, and
// refuses a checkpoint forged without the key.
func TestSignedCheckpoints(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	dir := t.TempDir()
	anchor := filepath.Join(dir, "audit.anchor")
	a := New(pool, anchor)
	if _, err := SignHead(ctx, pool, nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty chain: %v", err)
	}
	keyPath, pubPath, err := GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(keyPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode())
	}
	priv, err := LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	entries(t, a, 10)
	if _, err := SignHead(ctx, pool, priv); err != nil {
		t.Fatal(err)
	}
	entries(t, a, 10)
	keys := []ed25519.PublicKey{pub}
	if rep, err := Verify(ctx, pool, VerifyOptions{Anchor: anchor, Keys: keys}); err != nil || !rep.OK() {
		t.Fatalf("intact: %+v %v", rep, err)
	}
	// A checkpoint forged with another key is not trusted.
	_, other, _ := ed25519.GenerateKey(nil)
	if _, err := SignHead(ctx, pool, other); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, pool, VerifyOptions{Anchor: anchor, Keys: keys})
	if err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Problems, " "), "not trusted") {
		t.Fatalf("forged checkpoint: %+v %v", rep, err)
	}
	// A row put in first under the real key's id does not stand in for the real signature.
	if _, err := pool.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature)
		SELECT seq, hash, now(), $1, '\x00' FROM audit_head`, KeyID(pub)); err != nil {
		t.Fatal(err)
	}
	if _, err := SignHead(ctx, pool, priv); !errors.Is(err, ErrTampered) {
		t.Fatalf("signing over a planted checkpoint: %v, want ErrTampered", err)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only;
		DELETE FROM audit_checkpoints WHERE seq = 20;
		ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only`); err != nil {
		t.Fatal(err)
	}
	// The chain is cut below the signed row 10, head rewritten, the anchor file deleted.
	if _, err := pool.Exec(ctx, `ALTER TABLE audit DISABLE TRIGGER audit_append_only;
		DELETE FROM audit WHERE seq > 8;
		UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit WHERE seq = 8);
		ALTER TABLE audit ENABLE TRIGGER audit_append_only`); err != nil {
		t.Fatal(err)
	}
	os.Remove(anchor)
	rep, err = Verify(ctx, pool, VerifyOptions{Keys: keys})
	if err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Problems, " "), "row 10, signed in a checkpoint") {
		t.Fatalf("chain cut below a checkpoint: %+v %v", rep, err)
	}
}

// TestGroupCommitOutlivesAClient: one appender's context ends while the batch it started is being
// written; the others' entries are still committed.
func TestGroupCommitOutlivesAClient(t *testing.T) {
	pool := testenv.Pool(t)
	a := New(pool, "")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 50 {
		ctx := context.Background()
		if i%5 == 0 { // these clients give up at once
			c, cancel := context.WithCancel(ctx)
			cancel()
			ctx = c
		}
		wg.Go(func() {
			if _, err := a.Append(ctx, Entry{Actor: "inv", Role: "investigator", Action: "search"}); err != nil && ctx.Err() == nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	var n int
	pool.QueryRow(context.Background(), `SELECT count(*) FROM audit`).Scan(&n)
	if failed.Load() != 0 || n < 40 {
		t.Fatalf("%d appends of patient clients failed, %d rows written (want ≥ 40)", failed.Load(), n)
	}
}

// TestChangeCommitsWithItsEntry: an entry appended with a change lands only when it commits.
func TestChangeCommitsWithItsEntry(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	a := New(pool, "")
	entries(t, a, 3)
	boom := errors.New("the change failed")
	if _, err := a.Change(ctx, Entry{Actor: "admin", Role: "admin", Action: "person.add"}, nil, func(tx pgx.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	seq, err := a.Change(ctx, Entry{Actor: "admin", Role: "admin", Action: "person.add"}, func() json.RawMessage { return json.RawMessage(`{"id":"wang"}`) },
		func(tx pgx.Tx) error { return nil })
	if err != nil || seq != 4 {
		t.Fatalf("change: %d %v", seq, err)
	}
	entries(t, a, 1)
	if rep, err := Verify(ctx, pool, VerifyOptions{}); err != nil || !rep.OK() || rep.Rows != 5 {
		t.Fatalf("after a failed and a committed change: %+v %v", rep, err)
	}
}
