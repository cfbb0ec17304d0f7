package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/storage/vectors"
)

// runCold measures the index as a search node keeps months of faces: every day but the last
// sealed under dir (4-bit codes in memory, float32 vectors in files read back to re-rank, a
// snapshot per day). It prints the memory resident after the load and after the queries, the
// latency and recall@10 (against the exact answer) of a 30-day and an all-days query, and the
// time a restarted index takes to be ready from the snapshots.
func runCold(n, days, identities, nq, dim int, dir string, reopen bool) error {
	config.TuneGC() // as vigil serve runs
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	synth := vectors.NewSynth(1, identities, dim)
	opts := vectors.Options{Dim: dim, Dir: dir}
	perDay := n / days
	var x *vectors.Index
	if reopen {
		// A search node restarting: this process only reads the snapshots a first run left.
		t1 := time.Now()
		x = vectors.New(opts)
		for d := range days {
			ok, err := x.LoadSnapshot(start.AddDate(0, 0, d), perDay)
			if err != nil || !ok {
				return fmt.Errorf("day %d from its snapshot: %v %v (run without --reopen first)", d, ok, err)
			}
		}
		ready := time.Since(t1)
		runtime.GC()
		debug.FreeOSMemory()
		fmt.Printf("restart: %d vectors ready from the snapshots in %v (goal ≤ 60 s); garbage collected: %s\n", x.Len(), ready.Round(100*time.Millisecond), resident())
		return queryCold(x, synth, start, days, identities, nq, dim)
	}
	x = vectors.New(opts)
	t0 := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	var mu sync.Mutex
	var firstErr error
	for w := range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			v := make([]float32, dim)
			for d := range next {
				day := start.AddDate(0, 0, d)
				x.Reserve(day, perDay)
				var err error
				for i := range perDay {
					at := day.Add(time.Duration(i) * 24 * time.Hour / time.Duration(perDay))
					synth.Capture(rng.IntN(identities), rng, v)
					if _, e := x.Add(fmt.Sprintf("%012x%010x", at.UnixMilli(), d*perDay+i), at, fmt.Sprintf("cam%03d", rng.IntN(625)+1), v); e != nil {
						err = e
					}
				}
				if err == nil {
					err = x.BuildDay(day)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for d := range days {
		next <- d
		if d%30 == 29 {
			fmt.Printf("  … %d days loaded, built and sealed (%v)\n", d+1, time.Since(t0).Round(time.Second))
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	runtime.GC()
	fmt.Printf("%d vectors (%d-d) over %d days, each built and sealed under %s in %v; %s\n", x.Len(), dim, days, dir,
		time.Since(t0).Round(time.Second), resident())
	return queryCold(x, synth, start, days, identities, nq, dim)
}

// queryCold measures a 30-day and an all-days query against the exact answer.
func queryCold(x *vectors.Index, synth *vectors.Synth, start time.Time, days, identities, nq, dim int) error {
	rng := rand.New(rand.NewPCG(99, 99))
	qs := make([][]float32, nq)
	for i := range qs {
		qs[i] = make([]float32, dim)
		synth.Capture(rng.IntN(identities), rng, qs[i])
	}
	to := start.AddDate(0, 0, days)
	type span struct {
		name  string
		from  time.Time
		exact int // queries whose exact answer is computed (the exact scan reads every vector file)
		hits  [][]vectors.Hit
	}
	spans := []*span{{name: "last 30 days", from: to.AddDate(0, 0, -30), exact: nq}, {name: fmt.Sprintf("all %d days", days), from: start, exact: min(nq, 5)}}
	// The timed queries first, then the memory they leave, then the exact answers for recall
	// (the exact scan reads every vector file through buffers of its own).
	for _, sp := range spans {
		var ds []time.Duration
		for _, q := range qs {
			t := time.Now()
			hits, err := x.Search(vectors.Query{Vector: q, From: sp.from, To: to, K: 10})
			ds = append(ds, time.Since(t))
			if err != nil {
				return err
			}
			sp.hits = append(sp.hits, hits)
		}
		slices.Sort(ds)
		fmt.Printf("  %-14s top-10: p50 %6.1f ms, p95 %6.1f ms (%d queries)\n", sp.name,
			float64(ds[len(ds)/2].Microseconds())/1e3, float64(ds[len(ds)*95/100].Microseconds())/1e3, len(qs))
	}
	runtime.GC()
	debug.FreeOSMemory()
	fmt.Printf("after the queries, garbage collected: %s\n", resident())
	for _, sp := range spans {
		var recall float64
		for i, q := range qs[:sp.exact] {
			ex, err := x.Search(vectors.Query{Vector: q, From: sp.from, To: to, K: 10, Mode: vectors.Exact})
			if err != nil {
				return err
			}
			in := map[string]bool{}
			for _, h := range sp.hits[i] {
				in[h.ID] = true
			}
			found := 0
			for _, h := range ex {
				if in[h.ID] {
					found++
				}
			}
			recall += float64(found) / float64(max(len(ex), 1))
		}
		fmt.Printf("  %-14s recall@10 %.3f against the exact scan (%d queries)\n", sp.name, recall/float64(sp.exact), sp.exact)
	}
	return nil
}

// resident is the process's resident memory from /proc: anonymous (heap) and file-backed.
func resident() string {
	b, _ := os.ReadFile("/proc/self/status")
	var anon, file, rss float64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "RssAnon:":
			anon = v / 1e6
		case "RssFile:":
			file = v / 1e6
		case "VmRSS:":
			rss = v / 1e6
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("resident %.2f GB (anonymous %.2f, file-backed %.2f; Go heap in use %.2f GB)", rss, anon, file, float64(ms.HeapInuse)/1e9)
}
