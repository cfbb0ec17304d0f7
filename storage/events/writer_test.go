package events

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/schema"
)

// TestWriterSurvivesDatabaseOutage publishes events while the path to PostgreSQL is cut, restores
// it, and checks every event is stored exactly once, with its snapshot, and acknowledged.
// FAULT_SECONDS sets the outage (the run: 60).
func TestWriterSurvivesDatabaseOutage(t *testing.T) {
	dbURL := testenv.PostgresDB(t)
	u, _ := url.Parse(dbURL)
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := faultPool(t, u.String())
	b := testBus(t, log)
	blobs := blob.FS{Root: t.TempDir()}
	store := New(pool)
	w := NewWriter(store, b.JetStream(), blobs, WriterOptions{Stream: bus.Stream, Batch: 50, MaxWait: 50 * time.Millisecond}, nil, log)
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()

	publish := func(from, to int) {
		for i := from; i < to; i++ {
			r := rec(time.Now(), i, "cam001", "face")
			r.Snapshot = []byte(fmt.Sprintf("jpeg-%d", i))
			data := r.Pack()
			if err := b.Publish(ctx, event.SubjectPrefix+".face.cam001", r.ID, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 100)
	_ = b.Publish(ctx, event.SubjectPrefix+".face.cam001", "junk", []byte(`{"not":"an event"}`))
	waitCount(t, pool, 100, 10*time.Second)

	outage := faultSeconds(5 * time.Second)
	proxy.Cut()
	publish(100, 300) // events keep flowing while the database is unreachable
	time.Sleep(outage)
	proxy.Restore()
	waitCount(t, pool, 300, 30*time.Second)

	// The writer restarts (as after a crash) and the bus redelivers nothing new: still 300.
	wcancel()
	<-wdone
	w2 := NewWriter(store, b.JetStream(), blobs, WriterOptions{Stream: bus.Stream}, nil, log)
	w2ctx, w2cancel := context.WithCancel(ctx)
	go func() { _ = w2.Run(w2ctx) }()
	publish(300, 310)
	waitCount(t, pool, 310, 10*time.Second)
	w2cancel()
	var distinct int
	pool.QueryRow(ctx, `SELECT count(DISTINCT id) FROM events`).Scan(&distinct)
	if distinct != 310 {
		t.Fatalf("%d distinct events", distinct)
	}
	// Every snapshot crossed the bus as raw bytes and landed under its event's key, byte for byte.
	rows, err := pool.Query(ctx, `SELECT track, snapshot FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for rows.Next() {
		var track int
		var key string
		if err := rows.Scan(&track, &key); err != nil {
			t.Fatal(err)
		}
		if data, err := blobs.Get(ctx, key); err != nil || string(data) != fmt.Sprintf("jpeg-%d", track) {
			t.Fatalf("snapshot %s of track %d: %q %v", key, track, data, err)
		}
		checked++
	}
	if checked != 310 {
		t.Fatalf("%d snapshots checked", checked)
	}
}

func waitCount(t *testing.T, pool *pgxpool.Pool, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var n int
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n)
		cancel()
		if err == nil && n == want {
			return
		}
		if n > want {
			t.Fatalf("%d events stored, want %d: duplicates", n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d events stored after %v, want %d", n, within, want)
}

// faultPool connects with a short connect timeout (an unreachable database fails fast and is
// retried) and applies the migrations; it closes with the test.
func faultPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := schema.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// testBus opens an embedded bus with its store in a temporary folder; it closes with the test.
func testBus(t *testing.T, log *slog.Logger) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// faultSeconds is the outage a fault test injects: FAULT_SECONDS (the run: 60), else def.
func faultSeconds(def time.Duration) time.Duration {
	if s, err := strconv.Atoi(os.Getenv("FAULT_SECONDS")); err == nil {
		return time.Duration(s) * time.Second
	}
	return def
}
