package events

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/pgcluster"
)

// TestPostgreSQLStoppedWhileEventsFlow stops the PostgreSQL server itself (vigil's managed
// cluster) while events keep coming, starts it again, and counts: every event published is
// stored once. FAULT_SECONDS sets the outage (the run: 60).
func TestPostgreSQLStoppedWhileEventsFlow(t *testing.T) {
	if _, err := pgcluster.FindBin(); err != nil {
		testenv.Missing(t, "%v", err)
	}
	dir, err := os.MkdirTemp("", "vigil-pgstop-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	defer os.RemoveAll(dir)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster, err := pgcluster.Start(ctx, filepath.Join(dir, "pg"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cluster.Stop() }()
	pool := faultPool(t, cluster.URL())
	b := testBus(t, log)
	w := NewWriter(New(pool), b.JetStream(), nil, WriterOptions{Stream: bus.Stream, Batch: 100, MaxWait: 50 * time.Millisecond}, nil, log)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(wctx)

	published := 0
	publish := func(n int) {
		for i := 0; i < n; i++ {
			r := rec(time.Now(), published, "cam001", "face")
			data := r.Pack()
			if err := b.Publish(ctx, event.SubjectPrefix+".face.cam001", r.ID, data); err != nil {
				t.Fatal(err)
			}
			published++
		}
	}
	publish(200)
	waitCount(t, pool, published, 15*time.Second)

	outage := faultSeconds(5 * time.Second)
	cluster.Stop()
	stopped := time.Now()
	for time.Since(stopped) < outage {
		publish(50) // the pipeline keeps emitting while the database is down
		time.Sleep(500 * time.Millisecond)
	}
	cluster, err = pgcluster.Start(ctx, filepath.Join(dir, "pg"), log)
	if err != nil {
		t.Fatal(err)
	}
	waitCount(t, pool, published, 60*time.Second)
	var distinct int
	pool.QueryRow(ctx, `SELECT count(DISTINCT id) FROM events`).Scan(&distinct)
	t.Logf("PostgreSQL down %v: %d events published, %d stored once each", outage, published, distinct)
	if distinct != published {
		t.Fatalf("%d distinct of %d", distinct, published)
	}
}
