package vectors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestSealedDays: three past days sealed under a folder answer exactly as before sealing
// (exact mode) and nearly (approximate: recall@10 ≥ 0.95); a redelivery to a sealed day is
// refused and a late row is found; an erasure reads the day back and deletes its files; a new
// index loads the days from their snapshots and answers the same, and a day whose row count
// changed is not loaded from its snapshot.
func TestSealedDays(t *testing.T) {
	dir := t.TempDir()
	s := NewSynth(1, 2000, DefaultDim)
	x := New(Options{IVFMin: 5000, Dir: dir})
	who := fill(t, x, s, 3, 8000, 1)
	x.Build(nil)
	rng := rand.New(rand.NewPCG(9, 9))
	from, to := t0, t0.AddDate(0, 0, 3)
	type q struct{ v []float32 }
	var queries []q
	var before [][]Hit
	for i := range 20 {
		v := make([]float32, DefaultDim)
		s.Capture(i*37%s.Identities(), rng, v)
		queries = append(queries, q{v})
		h, err := x.Search(Query{Vector: v, From: from, To: to, K: 10, Mode: Exact})
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, h)
	}
	if n, err := x.Seal(); err != nil || n != 3 {
		t.Fatalf("sealed %d days: %v", n, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.vec")); len(m) != 3 {
		t.Fatalf("vector files: %v", m)
	}
	var found, total float64
	for i, qq := range queries {
		exact, err := x.Search(Query{Vector: qq.v, From: from, To: to, K: 10, Mode: Exact})
		if err != nil {
			t.Fatal(err)
		}
		if len(exact) != len(before[i]) {
			t.Fatalf("query %d: %d exact hits sealed, %d before", i, len(exact), len(before[i]))
		}
		for j := range exact {
			if exact[j].ID != before[i][j].ID {
				t.Fatalf("query %d: sealed exact answer differs at %d: %v vs %v", i, j, exact[j], before[i][j])
			}
		}
		approx, err := x.Search(Query{Vector: qq.v, From: from, To: to, K: 10})
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]bool{}
		for _, h := range approx {
			in[h.ID] = true
		}
		for _, h := range exact {
			total++
			if in[h.ID] {
				found++
			}
		}
	}
	if r := found / total; r < 0.95 {
		t.Errorf("sealed approximate recall@10 %.3f", r)
	}
	// Redelivery and a late row.
	again := before[1][0] // a row of a sealed day, delivered again
	v := make([]float32, DefaultDim)
	s.Capture(who[again.ID], rng, v)
	if added, err := x.Add(again.ID, again.Time, again.Camera, v); err != nil || added {
		t.Fatalf("a redelivered id was added to a sealed day: %v %v", added, err)
	}
	at := again.Time
	late := eventID(at, 99_999_999)
	if added, err := x.Add(late, at, "cam001", v); err != nil || !added {
		t.Fatalf("a late row: %v %v", added, err)
	}
	if h, err := x.Search(Query{Vector: v, From: from, To: to, K: 1, Mode: Exact}); err != nil || len(h) != 1 || h[0].ID != late {
		t.Fatalf("the late row is not the nearest to itself: %v %v", h, err)
	}
	// A new index from the snapshots answers the same (days unchanged since sealing).
	y := New(Options{IVFMin: 5000, Dir: dir})
	for d := range 3 {
		ok, err := y.LoadSnapshot(t0.AddDate(0, 0, d), 8000)
		if err != nil || !ok {
			t.Fatalf("day %d from its snapshot: %v %v", d, ok, err)
		}
	}
	if ok, _ := New(Options{Dir: dir}).LoadSnapshot(t0, 7999); ok {
		t.Error("a snapshot with another row count was loaded")
	}
	for i, qq := range queries[:5] {
		h, err := y.Search(Query{Vector: qq.v, From: from, To: to, K: 10, Mode: Exact})
		if err != nil || len(h) != len(before[i]) || h[0].ID != before[i][0].ID {
			t.Fatalf("query %d from snapshots: %v %v", i, h, err)
		}
	}
	// Erasure: the day is read back, the row goes, and so do the day's files.
	if n, err := x.RemoveIDs([]string{before[0][0].ID}); err != nil || n != 1 {
		t.Fatalf("erasure: %d %v", n, err)
	}
	h, err := x.Search(Query{Vector: queries[0].v, From: from, To: to, K: 10, Mode: Exact})
	if err != nil || len(h) == 0 || h[0].ID == before[0][0].ID {
		t.Fatalf("after erasure: %v %v", h, err)
	}
	day := dayOf(before[0][0].Time.UnixMilli())
	for _, ext := range []string{".vec", ".idx"} {
		if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(int(day))+ext)); !os.IsNotExist(err) {
			t.Errorf("the erased day's %s file is still there: %v", ext, err)
		}
	}
}

// TestDot4MatchesPlainGo: the 4-bit kernel against the nibbles decoded one by one, and
// quantise4's codes against the values they stand for.
func TestDot4MatchesPlainGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const n = 29
	q := make([]int8, DefaultDim)
	for i := range q {
		q[i] = int8(rng.IntN(255) - 127)
	}
	base := make([]byte, n*DefaultDim/2)
	for i := range base {
		base[i] = byte(rng.IntN(256))
	}
	out := make([]int32, n)
	dot4(q, base, out)
	for i := range n {
		var want int32
		for j := range DefaultDim {
			b := base[i*DefaultDim/2+j/2]
			if j%2 == 1 {
				b >>= 4
			}
			c := int32(b & 0x0f)
			if c >= 8 {
				c -= 16
			}
			want += c * int32(q[j])
		}
		if out[i] != want {
			t.Fatalf("vector %d: %d, want %d", i, out[i], want)
		}
	}
	v := make([]float32, DefaultDim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	codes := make([]byte, DefaultDim/2)
	scale := quantise4(v, codes)
	for j := range v {
		b := codes[j/2]
		if j%2 == 1 {
			b >>= 4
		}
		c := float32(int8(b<<4) >> 4)
		if d := c*scale - v[j]; (d > scale/2+1e-6 || d < -scale/2-1e-6) && (c != 7 && c != -7) { // ±7: clipped
			t.Fatalf("value %d: %v coded as %v×%v", j, v[j], c, scale)
		}
	}
}

// countsOnly is a Source that knows each day's count and fails if asked for rows.
type countsOnly map[time.Time]int

func (c countsOnly) FaceDays(context.Context, time.Time) (map[time.Time]int, error) { return c, nil }
func (c countsOnly) ScanFacesBetween(_ context.Context, from, _ time.Time, _ func(string, time.Time, string, []float32) error) error {
	return fmt.Errorf("day %v read from the database though its snapshot is current", from)
}

// TestLoadPrefersSnapshots: a restarted index takes every sealed day whose count matches from
// its snapshot and asks the database for none of them.
func TestLoadPrefersSnapshots(t *testing.T) {
	dir := t.TempDir()
	s := NewSynth(2, 500, DefaultDim)
	x := New(Options{IVFMin: 2000, Dir: dir})
	fill(t, x, s, 2, 3000, 2)
	x.Build(nil)
	if n, err := x.Seal(); err != nil || n != 2 {
		t.Fatalf("sealed %d: %v", n, err)
	}
	y := New(Options{IVFMin: 2000, Dir: dir})
	n, err := y.Load(context.Background(), countsOnly{t0: 3000, t0.AddDate(0, 0, 1): 3000}, t0, nil)
	if err != nil || n != 6000 || y.Len() != 6000 {
		t.Fatalf("loaded %d (%d held): %v", n, y.Len(), err)
	}
}
