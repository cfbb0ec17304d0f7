package pgcluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// baseDir is a folder for a test's cluster, under /tmp so that, as root, the postgres user can
// reach it; it goes when the test ends.
func baseDir(t *testing.T) string {
	t.Helper()
	if _, err := FindBin(); err != nil {
		testenv.Missing(t, "%v", err)
	}
	dir, err := os.MkdirTemp("", "vigil-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestManagedCluster initialises a cluster, writes a row, stops it, starts it again and finds
// the row: the cluster is reused across restarts.
func TestManagedCluster(t *testing.T) {
	dir := baseDir(t)
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

// TestSharedClusterLastUserStops: a second process (a tool beside a serving vigil) uses the
// running cluster and leaves it running when it is done; the last user out stops it.
func TestSharedClusterLastUserStops(t *testing.T) {
	dir := baseDir(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	serve, err := Start(ctx, filepath.Join(dir, "pg"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer serve.Stop()
	tool, err := Start(ctx, filepath.Join(dir, "pg"), log)
	if err != nil {
		t.Fatal(err)
	}
	if !tool.Running {
		t.Fatal("the tool did not find the serving cluster running")
	}
	tool.Stop()
	conn, err := pgx.Connect(ctx, serve.URL())
	if err != nil {
		t.Fatalf("the tool stopped the cluster a serve uses: %v", err)
	}
	conn.Close(ctx)
	serve.Stop()
	if serve.running(ctx) {
		t.Fatal("the last user left the cluster running")
	}
}

// TestFirstRunMakesReachableDirs: serve --data DIR on a DIR that does not exist yet. As root,
// the server runs as postgres and must get through the folders vigil creates.
func TestFirstRunMakesReachableDirs(t *testing.T) {
	base := baseDir(t)
	ctx := context.Background()
	c, err := Start(ctx, filepath.Join(base, "fresh", "data", "pg"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("first run on a fresh data directory: %v", err)
	}
	c.Stop()
}
