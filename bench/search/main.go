// Command search measures the investigator's searches that live in PostgreSQL on a fresh database:
// plate search over N plate events (the in-memory plate set, then each plate's events through the
// plate + time index, as GET /v1/search/plates does), p50/p95 per kind of query; the plate set's
// load time; and rebuilding the face vector index from M stored embeddings.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/plates"
	"github.com/vigil-oss/vigil/storage/schema"
	"github.com/vigil-oss/vigil/storage/vectors"
)

func main() {
	nPlates := flag.Int("plate-events", 10_000_000, "plate events in the table")
	distinct := flag.Int("plates", 200_000, "distinct plates among them")
	nFaces := flag.Int("faces", 1_000_000, "face embeddings for the index rebuild")
	queries := flag.Int("queries", 100, "queries per kind")
	flag.Parse()
	if err := run(*nPlates, *distinct, *nFaces, *queries); err != nil {
		fmt.Fprintln(os.Stderr, "search bench:", err)
		os.Exit(1)
	}
}

func run(nPlates, distinct, nFaces, nq int) error {
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
	const days = 180
	var ts []time.Time
	for d := 0; d <= days; d++ {
		ts = append(ts, now.AddDate(0, 0, -d))
	}
	if err := store.EnsurePartitions(ctx, ts...); err != nil {
		return err
	}

	// 1. Plate events: distinct plates of a province character, a letter and five digits, read by
	// six plate cameras over 180 days.
	t0 := time.Now()
	perDay := nPlates / days
	for d := 0; d < days; d++ {
		if _, err := pool.Exec(ctx, `INSERT INTO events (time, id, camera, kind, track, first_seen, plate, plate_color, quality)
			SELECT t, lpad(to_hex((extract(epoch from t)*1000)::bigint), 12, '0') || lpad(to_hex(g), 10, '0'),
			       'lpr' || (g % 6 + 1), 'plate', g, t,
			       (ARRAY['京','沪','粤','苏','浙','川','鄂','湘','闽','鲁','豫','冀'])[1 + k % 12] || chr((65 + (k / 12) % 24)::int) || lpad(((k * 7919) % 100000)::text, 5, '0'),
			       'blue', 0.9
			FROM (SELECT g, (g * 2654435761) % $4 AS k, $1::timestamptz + (g % 86400) * interval '1 second' AS t
			      FROM generate_series($2::bigint, $3::bigint) g) s`,
			now.AddDate(0, 0, -d-1), int64(d*perDay), int64((d+1)*perDay-1), int64(distinct)); err != nil {
			return err
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE events`); err != nil {
		return err
	}
	fmt.Printf("filled %d plate events over %d days in %v\n", perDay*days, days, time.Since(t0).Round(time.Second))
	t1 := time.Now()
	idx := plates.New()
	var texts []string
	if err := store.PlateCounts(ctx, now.AddDate(0, 0, -days-1), func(p string, n int, last time.Time) {
		idx.Add(p, n, last)
		texts = append(texts, p)
	}); err != nil {
		return err
	}
	fmt.Printf("plate set: %d distinct plates loaded in %v\n", idx.Len(), time.Since(t1).Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(8, 8))
	kinds := []struct {
		name string
		make func(p []rune) string
	}{
		{"exact", func(p []rune) string { return string(p) }},
		{"prefix (5 characters)", func(p []rune) string { return string(p[:5]) }},
		{"wildcard 粤B*12*", func(p []rune) string { return string(p[:2]) + "*" + string(p[4:6]) + "*" }},
		{"fuzzy: 5 of 7 characters", func(p []rune) string { return string(p[1:3]) + string(p[4:]) }},
		{"fuzzy: one OCR confusion", func(p []rune) string {
			q := slices.Clone(p)
			for i := len(q) - 1; i > 1; i-- {
				if alt, ok := map[rune]rune{'0': 'D', '8': 'B', '1': 'I', '2': 'Z', '5': 'S'}[q[i]]; ok {
					q[i] = alt
					break
				}
			}
			return string(q)
		}},
	}
	fmt.Printf("plate search over %d events, 30-day window, top 10 plates with up to 20 events each:\n", perDay*days)
	for _, k := range kinds {
		var ds []time.Duration
		found := 0
		for range nq {
			plate := texts[rng.IntN(len(texts))]
			q := k.make([]rune(plate))
			to := now.AddDate(0, 0, -rng.IntN(days-30))
			t := time.Now()
			hit := false
			var cands []string
			for _, m := range idx.Search(q, 40) {
				cands = append(cands, m.Plate)
			}
			byPlate, err := store.PlateEvents(ctx, cands, to.AddDate(0, 0, -30), to, "", 20)
			if err != nil {
				return err
			}
			n := 0
			for _, p := range cands {
				if n < 10 && len(byPlate[p]) > 0 {
					n++
					hit = hit || p == plate
				}
			}
			ds = append(ds, time.Since(t))
			if hit {
				found++
			}
		}
		slices.Sort(ds)
		fmt.Printf("  %-28s p50 %6.2f ms  p95 %6.2f ms  (the plate among the results in %d of %d)\n", k.name,
			float64(ds[len(ds)/2].Microseconds())/1e3, float64(ds[len(ds)*95/100].Microseconds())/1e3, found, nq)
	}

	// 2. Rebuilding the face index from stored embeddings.
	if nFaces == 0 {
		return nil
	}
	synth := vectors.NewSynth(2, 40000, vectors.DefaultDim)
	v := make([]float32, vectors.DefaultDim)
	t2 := time.Now()
	const batch = 20000
	for lo := 0; lo < nFaces; lo += batch {
		var rows [][]any
		for i := lo; i < min(lo+batch, nFaces); i++ {
			at := now.Add(-time.Duration(float64(i) / float64(nFaces) * 30 * 24 * float64(time.Hour)))
			synth.Capture(rng.IntN(synth.Identities()), rng, v)
			emb := make([]byte, 512)
			for j, f := range v {
				binary.LittleEndian.PutUint32(emb[4*j:], math.Float32bits(f))
			}
			rows = append(rows, []any{at, fmt.Sprintf("%012x%010x", at.UnixMilli(), i), fmt.Sprintf("cam%03d", i%625+1), emb, float32(0.8)})
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"faces"}, []string{"time", "event_id", "camera", "embedding", "quality"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
	}
	fmt.Printf("stored %d face embeddings over 30 days in %v\n", nFaces, time.Since(t2).Round(time.Second))
	x := vectors.New(vectors.Options{})
	var loaded time.Duration
	t3 := time.Now()
	n, err := x.Load(ctx, store, now.AddDate(0, 0, -31), func(phase string, done, total int) {
		if phase == "load" && done == total {
			loaded = time.Since(t3)
		}
	})
	if err != nil {
		return err
	}
	total := time.Since(t3)
	fmt.Printf("face index rebuild from PostgreSQL: %d vectors in %v (read %v, %.0f rows/s; IVF lists %v)\n",
		n, total.Round(time.Millisecond), loaded.Round(time.Millisecond), float64(n)/loaded.Seconds(), (total - loaded).Round(time.Millisecond))
	return nil
}
