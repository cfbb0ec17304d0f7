package vectors

import (
	"container/heap"
	"fmt"
	"slices"
)

// One partition's part of a search: the codes scanned, the candidates kept, the re-rank.

func dayEnd(d int32) int64 { return (int64(d) + 1) * 86400000 }

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// queryState is what every partition's search shares.
type queryState struct {
	Query
	q8     []int8
	qscale float32
	qnorm2 float32
	cands  int // int8 candidates kept for re-ranking
}

func newQueryState(q Query, rerank int) *queryState {
	qs := &queryState{Query: q, q8: make([]int8, len(q.Vector))}
	qs.qscale, qs.qnorm2 = quantise(q.Vector, qs.q8)
	qs.cands = max(q.K*rerank, 64)
	return qs
}

type filter struct {
	from, to int64
	cams     []bool
	whole    bool // every row of the partition passes
}

func (f *filter) ok(p *part, row int) bool {
	if f.whole {
		return true
	}
	t := p.times[row]
	return t >= f.from && t < f.to && (f.cams == nil || f.cams[p.cams[row]])
}

const block = 2048

type scratch struct {
	f  []float32
	i  []int32
	rs []int32
}

func newScratch() *scratch {
	return &scratch{f: make([]float32, block), i: make([]int32, block)}
}

// cand is a row and its (approximate or exact) squared distance.
type cand struct {
	row  int32
	d    float32
	part *part
}

// topK keeps the k smallest distances (a max-heap).
type topK struct {
	k int
	h []cand
}

func (t *topK) Len() int           { return len(t.h) }
func (t *topK) Less(i, j int) bool { return t.h[i].d > t.h[j].d }
func (t *topK) Swap(i, j int)      { t.h[i], t.h[j] = t.h[j], t.h[i] }
func (t *topK) Push(v any)         { t.h = append(t.h, v.(cand)) }
func (t *topK) Pop() any           { v := t.h[len(t.h)-1]; t.h = t.h[:len(t.h)-1]; return v }

func (t *topK) offer(row int32, d float32) {
	if len(t.h) < t.k {
		heap.Push(t, cand{row: row, d: d})
	} else if d < t.h[0].d {
		t.h[0] = cand{row: row, d: d}
		heap.Fix(t, 0)
	}
}

// search runs one partition's part of a query.
func (p *part) search(q *queryState, f filter, s *scratch) ([]cand, error) {
	n, dim := len(p.ids), p.dim
	mode := q.Mode
	if mode == Auto {
		mode = Approximate
	}
	if mode == Exact {
		top := &topK{k: q.K}
		buf := []float32(nil)
		if p.cold != nil {
			buf = make([]float32, block*dim)
		}
		for lo := 0; lo < n; lo += block {
			hi := min(lo+block, n)
			vec := p.vec
			if p.cold != nil { // read the block back from the day's file
				if _, err := p.cold.f.ReadAt(floatBytes(buf[:(hi-lo)*dim]), int64(lo)*int64(dim)*4); err != nil {
					return nil, fmt.Errorf("vectors: day %d: %w", p.day, err)
				}
				vec = buf[:(hi-lo)*dim]
				l2(q.Vector, vec, s.f)
			} else {
				l2(q.Vector, vec[lo*dim:hi*dim], s.f)
			}
			for j := range hi - lo {
				if f.ok(p, lo+j) {
					top.offer(int32(lo+j), s.f[j])
				}
			}
		}
		return top.h, nil
	}
	cands := q.cands
	if p.cold != nil {
		cands *= 3 // 4-bit codes rank less finely
	}
	top := &topK{k: cands}
	scan := func(lo, hi int) {
		for ; lo < hi; lo += block {
			e := min(lo+block, hi)
			if p.cold != nil {
				dot4(q.q8, p.cold.q4[lo*dim/2:e*dim/2], s.i)
			} else {
				dot8(q.q8, p.q8[lo*dim:e*dim], s.i)
			}
			for j := range e - lo {
				r := lo + j
				if f.ok(p, r) {
					// |v−q|² = |v|² + |q|² − 2 v·q, with v·q from the codes.
					top.offer(int32(r), p.norm2[r]+q.qnorm2-2*p.rowScale(r)*q.qscale*float32(s.i[j]))
				}
			}
		}
	}
	if mode == Approximate && p.ivf != nil {
		v := p.ivf
		probes := q.Probes
		if probes <= 0 {
			probes = max(16, v.nlist/6)
			if p.cold != nil {
				probes = max(12, v.nlist/8) // sealed days re-rank across days, from more candidates
			}
		}
		probes = min(probes, v.nlist)
		cd := make([]float32, v.nlist)
		l2(q.Vector, v.centroids, cd)
		order := make([]int32, v.nlist)
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(a, b int32) int { return cmpF(cd[a], cd[b]) })
		for _, l := range order[:probes] {
			scan(int(v.offsets[l]), int(v.offsets[l+1]))
		}
		scan(p.tailAt, n)
	} else {
		scan(0, n)
	}
	if p.cold != nil {
		return top.h, nil // approximate: Search re-ranks the best of every sealed day at once
	}
	// Re-rank the candidates in float32; keep K.
	rows := s.rs[:0]
	for _, c := range top.h {
		rows = append(rows, c.row)
	}
	s.rs = rows
	exact := make([]float32, len(rows))
	l2Rows(q.Vector, p.vec, rows, exact)
	best := &topK{k: q.K}
	for i, r := range rows {
		best.offer(r, exact[i])
	}
	return best.h, nil
}

// rowScale is a row's code scale (int8 or, sealed, 4-bit).
func (p *part) rowScale(r int) float32 {
	if p.cold != nil {
		return p.cold.scale4[r]
	}
	return p.scale[r]
}
