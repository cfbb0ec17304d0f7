package pgcluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestManagedCluster initialises a cluster, writes a row, stops it, starts it again and finds
// the row: the cluster is reused across restarts.
func TestManagedCluster(t *testing.T) {
	if _, err := FindBin(); err != nil {
		t.Skip(err)
	}
	// Under /tmp so that, as root, the postgres user can reach it.
	dir, err := os.MkdirTemp("", "vigil-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	defer os.RemoveAll(dir)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := Start(ctx, filepath.Join(dir, "pg"), log)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')`)
	conn.Close(ctx)
	c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Start(ctx, filepath.Join(dir, "pg"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	conn, err = pgx.Connect(ctx, c2.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SELECT v FROM t`).Scan(&v); err != nil || v != "kept" {
		t.Fatalf("after restart: %q %v", v, err)
	}
}
