// Command store measures the event store on a fresh PostgreSQL database: sustained ingest from the
// bus through the batch writer (with every index), the same events through Store.Insert without
// the bus, and a raw COPY of the same rows as the reference; then GET /v1/events's queries over
// a table of N events (camera + 1 hour, person + 30 days), p50 and p95.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/schema"
)

func main() {
	ingest := flag.Int("ingest", 200000, "events for the ingest figures")
	total := flag.Int("events", 10_000_000, "events in the table for the query figures")
	queries := flag.Int("queries", 300, "queries per kind")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the bus phase")
	withSnapshots := flag.Bool("snapshots", false, "events carry a 15 KB snapshot each")
	flag.IntVar(&writers, "writers", 0, "batches written at once (0: the writer's default)")
	flag.Parse()
	config.TuneGC() // as vigil serve runs
	cpuProfile = *cpuprofile
	if !*withSnapshots {
		snapshot = nil
	}
	if err := run(*ingest, *total, *queries); err != nil {
		fmt.Fprintln(os.Stderr, "store bench:", err)
		os.Exit(1)
	}
}

func run(nIngest, nTotal, nQueries int) error {
	ctx := context.Background()
	url, drop, err := testenv.CreateDB(ctx)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", testenv.AdminURL(), err)
	}
	defer drop()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := schema.Migrate(ctx, pool); err != nil {
		return err
	}
	store := events.New(pool)
	now := time.Now().UTC()
	if err := store.EnsureAhead(ctx, now, 1); err != nil {
		return err
	}
	recs := make([]*event.Event, nIngest)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range recs {
		recs[i] = record(rng, now.Add(-time.Duration(rng.IntN(3600))*time.Second), i)
	}

	// 1. Raw COPY of the same rows (event columns and embeddings) into indexed copies of the
	// tables, rows prepared in advance: the reference.
	if _, err := pool.Exec(ctx, `CREATE TABLE copy_ref (LIKE events INCLUDING ALL); CREATE TABLE copy_faces (LIKE faces INCLUDING ALL)`); err != nil {
		return err
	}
	rows := make([][]any, len(recs))
	faces := make([][]any, len(recs))
	for i, r := range recs {
		rows[i] = []any{r.Time, r.ID, r.Camera, r.Kind, r.Track, r.First, r.Frames, r.Quality, r.Liveness}
		emb := make([]byte, 512)
		faces[i] = []any{r.Time, r.ID, r.Camera, emb, r.Quality}
	}
	t0 := time.Now()
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"copy_ref"}, []string{"time", "id", "camera", "kind", "track", "first_seen", "frames", "quality", "liveness"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"copy_faces"}, []string{"time", "event_id", "camera", "embedding", "quality"}, pgx.CopyFromRows(faces)); err != nil {
		return err
	}
	copyRate := float64(len(recs)) / time.Since(t0).Seconds()

	// 2. The bus path: events already on the bus, the writer drains them into the table.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir, _ := os.MkdirTemp("", "vigil-bench-bus-")
	defer os.RemoveAll(dir)
	b, err := bus.Open(ctx, bus.Config{StoreDir: dir}, log)
	if err != nil {
		return err
	}
	defer b.Close()
	half := len(recs) / 2
	for _, r := range recs[:half] {
		data := r.Pack()
		if err := b.Publish(ctx, event.SubjectPrefix+"."+r.Kind+"."+r.Camera, r.ID, data); err != nil {
			return err
		}
	}
	if cpuProfile != "" {
		f, _ := os.Create(cpuProfile)
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	blobDir, _ := os.MkdirTemp("", "vigil-bench-blobs-")
	defer os.RemoveAll(blobDir)
	reg := prometheus.NewRegistry()
	w := events.NewWriter(store, b.JetStream(), blob.FS{Root: blobDir}, events.WriterOptions{Stream: bus.Stream, Batch: 5000, Writers: writers}, reg, log)
	wctx, wcancel := context.WithCancel(ctx)
	t1, self1, pg1 := time.Now(), measure.SelfCPU(), measure.CommandCPU("postgres")
	go w.Run(wctx)
	// Progress from the writer's own counter: polling count(*) would cost PostgreSQL more than
	// the inserts.
	for written(reg) < half {
		time.Sleep(5 * time.Millisecond)
	}
	busRate := float64(half) / time.Since(t1).Seconds()
	selfPer := (measure.SelfCPU() - self1) / time.Duration(half)
	pgPer := (measure.CommandCPU("postgres") - pg1) / time.Duration(half)
	wcancel()
	pprof.StopCPUProfile()

	// 3. Store.Insert (staging COPY + insert-if-absent) without the bus.
	t2 := time.Now()
	var g errgroup.Group
	g.SetLimit(cmp.Or(writers, 2))
	for i := half; i < len(recs); i += 5000 {
		g.Go(func() error {
			_, err := store.Insert(ctx, recs[i:min(i+5000, len(recs))], func(*event.Event) string { return "" })
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	insertRate := float64(len(recs)-half) / time.Since(t2).Seconds()

	fmt.Printf("ingest, %d events with all indexes: bus → writer %.0f events/s; Store.Insert %.0f events/s; raw COPY reference %.0f rows/s (writer/COPY %.2f)\n",
		len(recs), busRate, insertRate, copyRate, busRate/copyRate)
	fmt.Printf("CPU per event through the bus: %.1f µs (bus + writer %.1f µs, PostgreSQL %.1f µs): %.0f events/s per core\n",
		float64(selfPer+pgPer)/1e3, float64(selfPer)/1e3, float64(pgPer)/1e3, 1e9/float64(selfPer+pgPer))

	// 4. Queries over nTotal events spread over 180 days, 625 cameras, 39,000 people.
	if _, err := pool.Exec(ctx, `TRUNCATE events`); err != nil {
		return err
	}
	days := 180
	var ts []time.Time
	for d := 0; d <= days; d++ {
		ts = append(ts, now.AddDate(0, 0, -d))
	}
	if err := store.EnsurePartitions(ctx, ts...); err != nil {
		return err
	}
	t3 := time.Now()
	perDay := nTotal / days
	for d := 0; d < days; d++ {
		day := now.AddDate(0, 0, -d-1)
		if _, err := pool.Exec(ctx, `INSERT INTO events (time, id, camera, kind, track, first_seen, person_id, quality)
			SELECT t, lpad(to_hex((extract(epoch from t)*1000)::bigint), 12, '0') || lpad(to_hex(g), 10, '0'),
			       'cam' || lpad((g % 625 + 1)::text, 3, '0'), 'face', g, t,
			       CASE WHEN g % 3 = 0 THEN 'p' || (g * 7919 % 39000) END, 0.8
			FROM (SELECT g, $1::timestamptz + (g % 86400) * interval '1 second' AS t FROM generate_series($2::bigint, $3::bigint) g) s`,
			day, int64(d*perDay), int64((d+1)*perDay-1)); err != nil {
			return err
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE events`); err != nil {
		return err
	}
	fmt.Printf("filled %d events over %d days in %v\n", perDay*days, days, time.Since(t3).Round(time.Second))
	measure := func(name string, f func(i int) events.Filter) {
		var ds []time.Duration
		total := 0
		for i := 0; i < nQueries; i++ {
			q := f(i)
			q.Limit = 100
			t := time.Now()
			list, _, err := store.Query(ctx, q)
			ds = append(ds, time.Since(t))
			if err != nil {
				panic(err)
			}
			total += len(list)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		fmt.Printf("%-28s p50 %6.2f ms  p95 %6.2f ms  (%d queries, %.1f rows each)\n", name,
			float64(ds[len(ds)/2].Microseconds())/1000, float64(ds[len(ds)*95/100].Microseconds())/1000, nQueries, float64(total)/float64(nQueries))
	}
	measure("camera + 1 hour window", func(i int) events.Filter {
		from := now.AddDate(0, 0, -1-rng.IntN(days-1)).Add(time.Duration(rng.IntN(23)) * time.Hour)
		return events.Filter{From: from, To: from.Add(time.Hour), Camera: fmt.Sprintf("cam%03d", rng.IntN(625)+1)}
	})
	measure("person + 30 days", func(i int) events.Filter {
		to := now.AddDate(0, 0, -rng.IntN(days-30))
		return events.Filter{From: to.AddDate(0, 0, -30), To: to, Person: fmt.Sprintf("p%d", rng.IntN(39000))}
	})
	return nil
}

var (
	cpuProfile string
	writers    int
)

var snapshot = func() []byte {
	b := make([]byte, 15000)
	b[0], b[1] = 0xff, 0xd8
	for i := 2; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}()

func record(rng *rand.Rand, t time.Time, i int) *event.Event {
	r := &event.Event{ID: fmt.Sprintf("%012x%010x", t.UnixMilli(), i), Camera: fmt.Sprintf("cam%03d", rng.IntN(625)+1),
		Kind: "face", Track: uint64(i), Time: t, First: t, Frames: 3, Quality: 0.8}
	if i%3 == 0 {
		r.Match = &event.Match{PersonID: fmt.Sprintf("p%d", rng.IntN(39000)), Name: "x", List: "residents", Distance: 0.3}
	}
	r.Snapshot = snapshot // a best shot as the pipeline sends it (~15 KB JPEG)
	r.Embedding = make([]byte, 512)
	for k := range r.Embedding {
		r.Embedding[k] = byte(rng.Uint32())
	}
	return r
}

// written reads the writer's events_written counter.
func written(reg *prometheus.Registry) int {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "vigil_store_events_written_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}
