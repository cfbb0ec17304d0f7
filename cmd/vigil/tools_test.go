package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestAuditToolsCheckpointAndVerify: keygen, a signed checkpoint, verify against the public key;
// then someone with the database cuts the chain's tail and removes the anchor file: verify fails,
// naming the signed row that is gone.
func TestAuditToolsCheckpointAndVerify(t *testing.T) {
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data, keys := t.TempDir(), t.TempDir()
	if code, out, errs := runCmd("audit", "keygen", "--out", keys); code != 0 || !strings.Contains(out, "audit-checkpoint.pub") {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	key, pub := filepath.Join(keys, "audit-checkpoint.key"), filepath.Join(keys, "audit-checkpoint.pub")
	for _, name := range []string{"post 1", "post 2", "post 3"} {
		if code, _, errs := runCmd("token", "create", "--role", "operator", "--name", name, "--data", data); code != 0 {
			t.Fatalf("token: %s", errs)
		}
	}
	if code, out, errs := runCmd("audit", "checkpoint", "--key", key, "--data", data); code != 0 || !strings.Contains(out, "row 3") {
		t.Fatalf("checkpoint: %d %s %s", code, out, errs)
	}
	if code, out, errs := runCmd("audit", "verify", "--pub", pub, "--data", data); code != 0 || !strings.Contains(out, "intact: 3 rows") {
		t.Fatalf("verify: %d %s %s", code, out, errs)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `ALTER TABLE audit DISABLE TRIGGER audit_append_only;
		DELETE FROM audit WHERE seq > 1;
		UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit WHERE seq = 1);
		ALTER TABLE audit ENABLE TRIGGER audit_append_only`); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(data, "audit.anchor"))
	code, out, _ := runCmd("audit", "verify", "--pub", pub, "--data", data)
	if code != 1 || !strings.Contains(out, "TAMPERED: row 3, signed in a checkpoint") || !strings.Contains(out, "anchor file is missing") {
		t.Fatalf("verify of the cut chain: %d %s", code, out)
	}
}
