package vectors

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func eventID(t time.Time, n int) string {
	return fmt.Sprintf("%012x%010x", t.UnixMilli(), n)
}

func TestKernelsMatchPlainGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 37
	q := make([]float32, DefaultDim)
	base := make([]float32, n*DefaultDim)
	for i := range q {
		q[i] = float32(rng.NormFloat64())
	}
	for i := range base {
		base[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, n)
	l2(q, base, out)
	rows := []int32{5, 0, 36}
	outRows := make([]float32, len(rows))
	l2Rows(q, base, rows, outRows)
	for i := range n {
		var want float64
		for j := range DefaultDim {
			d := float64(base[i*DefaultDim+j] - q[j])
			want += d * d
		}
		if math.Abs(float64(out[i])-want) > 1e-3*want {
			t.Fatalf("l2 row %d: %v, want %v", i, out[i], want)
		}
	}
	for k, r := range rows {
		if outRows[k] != out[r] {
			t.Fatalf("l2Rows %d: %v vs %v", r, outRows[k], out[r])
		}
	}
	q8 := make([]int8, DefaultDim)
	b8 := make([]int8, n*DefaultDim)
	for i := range q8 {
		q8[i] = int8(rng.IntN(256) - 128)
	}
	for i := range b8 {
		b8[i] = int8(rng.IntN(256) - 128)
	}
	dots := make([]int32, n)
	dot8(q8, b8, dots)
	for i := range n {
		var want int32
		for j := range DefaultDim {
			want += int32(q8[j]) * int32(b8[i*DefaultDim+j])
		}
		if dots[i] != want {
			t.Fatalf("dot8 row %d: %d, want %d", i, dots[i], want)
		}
	}
}

func TestAddValidatesAndDeduplicates(t *testing.T) {
	x := New(Options{})
	v := make([]float32, DefaultDim)
	if _, err := x.Add("abc", t0, "cam", v); !errors.Is(err, ErrID) {
		t.Fatalf("short id: %v", err)
	}
	if _, err := x.Add("zz"+eventID(t0, 1)[2:], t0, "cam", v); !errors.Is(err, ErrID) {
		t.Fatalf("non-hex id: %v", err)
	}
	if _, err := x.Add(eventID(t0, 1), t0, "cam", v[:5]); !errors.Is(err, ErrDim) {
		t.Fatalf("short vector: %v", err)
	}
	for range 2 {
		if _, err := x.Add(eventID(t0, 1), t0, "cam", v); err != nil {
			t.Fatal(err)
		}
	}
	if x.Len() != 1 {
		t.Fatalf("redelivered id added twice: %d", x.Len())
	}
	if _, err := x.Search(Query{Vector: v, From: t0, To: t0}); !errors.Is(err, ErrRange) {
		t.Fatalf("empty range: %v", err)
	}
	if _, err := x.Search(Query{Vector: v, From: t0.Add(time.Hour), To: t0}); !errors.Is(err, ErrRange) {
		t.Fatalf("reversed range: %v", err)
	}
}

// fill adds per-day captures of synthetic identities over days; it returns, per event id, the identity.
func fill(t testing.TB, x *Index, s *Synth, days, perDay int, seed uint64) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 3))
	who := map[string]int{}
	v := make([]float32, DefaultDim)
	n := int(seed) * 10_000_000 // ids distinct across fills
	for d := range days {
		for i := range perDay {
			id := rng.IntN(s.Identities())
			s.Capture(id, rng, v)
			at := t0.AddDate(0, 0, d).Add(time.Duration(i) * 86400 * time.Second / time.Duration(perDay))
			eid := eventID(at, n)
			n++
			if _, err := x.Add(eid, at, fmt.Sprintf("cam%03d", id%50), v); err != nil {
				t.Fatal(err)
			}
			who[eid] = id
		}
	}
	return who
}

func TestSearchModesAgreeAndFilter(t *testing.T) {
	s := NewSynth(1, 2000, DefaultDim)
	x := New(Options{IVFMin: 5000})
	who := fill(t, x, s, 3, 8000, 1)
	var progressed int
	x.Build(func(done, total int) { progressed = done; _ = total })
	if progressed != 24000 {
		t.Fatalf("build progress ended at %d rows", progressed)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	v := make([]float32, DefaultDim)
	from, to := t0, t0.AddDate(0, 0, 3)
	var recallQ, recallA, trueFound, trueTotal float64
	const queries = 60
	for qi := range queries {
		id := qi * 31 % s.Identities()
		s.Capture(id, rng, v)
		exact, err := x.Search(Query{Vector: v, From: from, To: to, K: 10, Mode: Exact})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(exact); i++ {
			if exact[i].Distance < exact[i-1].Distance {
				t.Fatalf("exact results out of order: %v", exact)
			}
		}
		inExact := map[string]bool{}
		for _, h := range exact {
			inExact[h.ID] = true
			if who[h.ID] == id {
				trueFound++
			}
		}
		for _, w := range who {
			if w == id {
				trueTotal++
			}
		}
		trueTotal -= max(0, float64(countOf(who, id)-10)) // recall@10 counts at most 10
		for mode, r := range map[Mode]*float64{Quantised: &recallQ, Approximate: &recallA} {
			got, err := x.Search(Query{Vector: v, From: from, To: to, K: 10, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range got {
				if inExact[h.ID] {
					*r += 1 / float64(len(exact))
				}
			}
		}
	}
	recallQ /= queries
	recallA /= queries
	t.Logf("recall@10 against exact: quantised %.3f, approximate %.3f; exact finds %.3f of the identity's captures", recallQ, recallA, trueFound/trueTotal)
	if recallQ < 0.99 || recallA < 0.98 {
		t.Fatalf("recall@10 against exact: quantised %.3f, approximate %.3f", recallQ, recallA)
	}
	if trueFound/trueTotal < 0.99 {
		t.Fatalf("exact search finds only %.3f of the identity's captures", trueFound/trueTotal)
	}

	// Time range: only the second day; cameras: one camera; max distance.
	s.Capture(7, rng, v)
	day2, _ := x.Search(Query{Vector: v, From: t0.AddDate(0, 0, 1), To: t0.AddDate(0, 0, 2), K: 50})
	for _, h := range day2 {
		if h.Time.Before(t0.AddDate(0, 0, 1)) || !h.Time.Before(t0.AddDate(0, 0, 2)) {
			t.Fatalf("hit outside the range: %v", h.Time)
		}
	}
	cam, _ := x.Search(Query{Vector: v, From: from, To: to, K: 50, Cameras: []string{"cam007"}})
	if len(cam) == 0 {
		t.Fatal("no hits on cam007")
	}
	for _, h := range cam {
		if h.Camera != "cam007" {
			t.Fatalf("hit on %s", h.Camera)
		}
	}
	near, _ := x.Search(Query{Vector: v, From: from, To: to, K: 50, MaxDistance: 0.6})
	for _, h := range near {
		if h.Distance > 0.6 || who[h.ID] != 7 {
			t.Fatalf("max distance 0.6: %+v (identity %d)", h, who[h.ID])
		}
	}
	if none, _ := x.Search(Query{Vector: v, From: from, To: to, Cameras: []string{"nope"}}); len(none) != 0 {
		t.Fatalf("unknown camera: %v", none)
	}
}

func countOf(who map[string]int, id int) int {
	n := 0
	for _, w := range who {
		if w == id {
			n++
		}
	}
	return n
}

func TestRemoveAndConcurrentBuild(t *testing.T) {
	s := NewSynth(2, 500, DefaultDim)
	x := New(Options{IVFMin: 2000})
	who := fill(t, x, s, 2, 3000, 2)
	var wg sync.WaitGroup
	wg.Go(func() { x.Build(nil) })
	wg.Go(func() { fill(t, x, s, 1, 500, 3) }) // adds to day 0 while it is clustered
	wg.Wait()
	if x.Len() != 6500 {
		t.Fatalf("%d vectors after build with concurrent adds", x.Len())
	}
	var gone []string
	for id, w := range who {
		if w == 42 {
			gone = append(gone, id)
		}
	}
	if n, err := x.RemoveIDs(gone); err != nil || n != len(gone) || n == 0 {
		t.Fatalf("removed %d of %d", n, len(gone))
	}
	rng := rand.New(rand.NewPCG(5, 5))
	v := make([]float32, DefaultDim)
	s.Capture(42, rng, v)
	for _, m := range []Mode{Exact, Quantised, Approximate} {
		hits, _ := x.Search(Query{Vector: v, From: t0, To: t0.AddDate(0, 0, 2), K: 20, Mode: m})
		for _, h := range hits {
			if who[h.ID] == 42 {
				t.Fatalf("%v: erased capture %s still found", m, h.ID)
			}
		}
	}
	x.Build(nil) // rebuilds the partitions the removal reset
	if hits, _ := x.Search(Query{Vector: v, From: t0, To: t0.AddDate(0, 0, 2), K: 5}); len(hits) != 5 {
		t.Fatalf("after rebuild: %d hits", len(hits))
	}
}
