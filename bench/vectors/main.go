// Command vectors measures face search over N synthetic face embeddings (--dim values) spread over D days:
// top-10 latency of the exact float32 scan, the int8 scan with float32 re-ranking, and the IVF
// index, each with its recall@10 against exact, all in the same run; the memory-bandwidth floor of
// one float32 pass as the reference; and the time to build the index.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/storage/vectors"
)

func main() {
	n := flag.Int("n", 1_000_000, "vectors")
	days := flag.Int("days", 0, "days the vectors spread over, one partition each (0: at the reference site's 90,000 faces a day)")
	identities := flag.Int("identities", 60000, "distinct people")
	dim := flag.Int("dim", vectors.DefaultDim, "embedding length (256: intel-0095, the default; 128: dlib-v1)")
	queries := flag.Int("queries", 30, "queries per mode")
	dir := flag.String("dir", "", "seal every day under this folder (a search node's months of faces: 4-bit codes in memory, vectors on disk); empty: all in memory")
	reopen := flag.Bool("reopen", false, "with --dir: load what a first run sealed there, as a restarted node, and query it")
	flag.Parse()
	if *days <= 0 {
		*days = max(1, (*n+89999)/90000)
	}
	if *dir != "" {
		if err := runCold(*n, *days, *identities, *queries, *dim, *dir, *reopen); err != nil {
			fmt.Fprintln(os.Stderr, "vectors bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *days, *identities, *queries, *dim); err != nil {
		fmt.Fprintln(os.Stderr, "vectors bench:", err)
		os.Exit(1)
	}
}

func run(n, days, identities, nq, dim int) error {
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	synth := vectors.NewSynth(1, identities, dim)
	x := vectors.New(vectors.Options{Dim: dim})
	t0 := time.Now()
	// Filled from GOMAXPROCS goroutines, one day each at a time, as a rebuild from PostgreSQL does.
	var wg sync.WaitGroup
	perDay := n / days
	next := make(chan int)
	var mu sync.Mutex
	var addErr error
	for w := range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			v := make([]float32, dim)
			for d := range next {
				for i := range perDay {
					at := start.AddDate(0, 0, d).Add(time.Duration(i) * 24 * time.Hour / time.Duration(perDay))
					synth.Capture(rng.IntN(identities), rng, v)
					id := fmt.Sprintf("%012x%010x", at.UnixMilli(), d*perDay+i)
					if _, err := x.Add(id, at, fmt.Sprintf("cam%03d", rng.IntN(625)+1), v); err != nil {
						mu.Lock()
						addErr = err
						mu.Unlock()
					}
				}
			}
		})
	}
	for d := range days {
		x.Reserve(start.AddDate(0, 0, d), perDay) // as a rebuild does, from each day's count
	}
	for d := range days {
		next <- d
	}
	close(next)
	wg.Wait()
	if addErr != nil {
		return addErr
	}
	loaded := time.Since(t0)
	t1 := time.Now()
	x.Build(nil)
	built := time.Since(t1)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("%d vectors over %d days (%d per partition): added in %v (%.0f/s), IVF built in %v; heap %.1f GB\n",
		x.Len(), days, perDay, loaded.Round(time.Millisecond), float64(x.Len())/loaded.Seconds(), built.Round(time.Millisecond), float64(ms.HeapAlloc)/1e9)

	bw := bandwidth()
	floor := float64(x.Len()) * float64(dim) * 4 / bw
	fmt.Printf("memory bandwidth (copy, %d threads): %.1f GB/s → one float32 pass over %d vectors ≥ %.1f ms\n",
		runtime.GOMAXPROCS(0), bw/1e9, x.Len(), floor*1e3)

	rng := rand.New(rand.NewPCG(99, 99))
	qs := make([][]float32, nq)
	for i := range qs {
		qs[i] = make([]float32, dim)
		synth.Capture(rng.IntN(identities), rng, qs[i])
	}
	from, to := start, start.AddDate(0, 0, days)
	exact := make([]map[string]bool, nq)
	measure := func(name string, mode vectors.Mode, probes int) {
		var ds []time.Duration
		var recall float64
		for i, q := range qs {
			t := time.Now()
			hits, err := x.Search(vectors.Query{Vector: q, From: from, To: to, K: 10, Mode: mode, Probes: probes})
			ds = append(ds, time.Since(t))
			if err != nil {
				panic(err)
			}
			if mode == vectors.Exact {
				exact[i] = map[string]bool{}
				for _, h := range hits {
					exact[i][h.ID] = true
				}
			}
			found := 0
			for _, h := range hits {
				if exact[i][h.ID] {
					found++
				}
			}
			recall += float64(found) / float64(max(len(exact[i]), 1))
		}
		slices.Sort(ds)
		p50, p95 := ds[len(ds)/2], ds[len(ds)*95/100]
		fmt.Printf("  %-34s p50 %8.1f ms  p95 %8.1f ms  recall@10 %.3f  (%.1f× the float32 floor at p50)\n", name,
			float64(p50.Microseconds())/1e3, float64(p95.Microseconds())/1e3, recall/float64(nq), p50.Seconds()/floor)
	}
	fmt.Printf("top-10 over all %d vectors, %d queries each:\n", x.Len(), nq)
	measure("exact (float32 flat scan)", vectors.Exact, 0)
	measure("quantised (int8 scan, re-rank)", vectors.Quantised, 0)
	measure("approximate (IVF, default probes)", vectors.Approximate, 0)
	for _, p := range []int{8, 16, 32} {
		measure(fmt.Sprintf("approximate (IVF, %d probes)", p), vectors.Approximate, p)
	}
	d30 := to.AddDate(0, 0, -30)
	t := time.Now()
	for _, q := range qs {
		if _, err := x.Search(vectors.Query{Vector: q, From: d30, To: to, K: 10}); err != nil {
			return err
		}
	}
	fmt.Printf("last 30 days only (default mode): %.1f ms per query on average\n", float64(time.Since(t).Microseconds())/1e3/float64(nq))
	return nil
}

// bandwidth measures memory copy bandwidth (bytes read + written per second) over 1 GiB buffers,
// one copy per thread.
func bandwidth() float64 {
	const size = 1 << 28
	th := runtime.GOMAXPROCS(0)
	src, dst := make([][]byte, th), make([][]byte, th)
	for i := range th {
		src[i], dst[i] = make([]byte, size), make([]byte, size)
		for j := 0; j < size; j += 4096 {
			src[i][j], dst[i][j] = 1, 1
		}
	}
	best := 0.0
	for range 3 {
		var wg sync.WaitGroup
		t := time.Now()
		for i := range th {
			wg.Go(func() { copy(dst[i], src[i]) })
		}
		wg.Wait()
		best = max(best, float64(2*size*th)/time.Since(t).Seconds())
	}
	return best
}
