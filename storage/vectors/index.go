// Package vectors is the face-search index: every face event's 128-d embedding, partitioned by day
// so a 30-day query touches 30 partitions, searched by
//
//   - exact flat scan in float32 (the baseline, and the answer the others are measured against);
//   - quantised flat scan: int8 codes with a scale per vector (a quarter of the bytes), the best
//     candidates re-ranked in float32, which returns the exact answer in practice;
//   - approximate: an inverted-file index (IVF) per partition — k-means lists stored contiguously —
//     probing the lists nearest the query, then the same int8 scan and float32 re-ranking.
//
// The index lives in memory, is rebuilt from PostgreSQL's faces table at start and kept current
// from the bus. Distances are Euclidean, as the gallery matcher's.
package vectors

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// DefaultDim is the embedding size of an index made without Options.Dim: the default face
// space's.
const DefaultDim = 256

// Mode picks the search path.
type Mode int

// Search modes.
const (
	Auto        Mode = iota // approximate where a partition has its IVF index, quantised elsewhere
	Exact                   // float32 flat scan
	Quantised               // int8 flat scan, float32 re-ranking
	Approximate             // IVF lists, int8, float32 re-ranking (quantised where no IVF yet)
)

func (m Mode) String() string {
	return [...]string{"auto", "exact", "quantised", "approximate"}[m]
}

// Query is one search.
type Query struct {
	Vector   []float32
	From, To time.Time // To exclusive; both required
	Cameras  []string  // empty: all
	K        int       // results wanted; default 10
	// MaxDistance drops results farther than it; 0 keeps all K.
	MaxDistance float32
	Mode        Mode
	// Probes is how many IVF lists are scanned per partition; 0 picks one from the list count.
	Probes int
}

// Hit is one result.
type Hit struct {
	ID       string
	Time     time.Time
	Camera   string
	Distance float32
}

// Options tune the index.
type Options struct {
	// Dim is the embeddings' length (a multiple of 16): the face space's. Default DefaultDim.
	Dim int
	// IVFMin is the fewest rows a partition needs before Build gives it an IVF index. Default 20,000.
	IVFMin int
	// Rerank is how many int8 candidates per wanted result are re-ranked in float32. Default 8
	// (twice that for sealed days' 4-bit codes).
	Rerank int
	// Dir, when set, is where sealed days keep their vectors and snapshots (cold.go): the index
	// then holds 4-bit codes of every day older than HotDays, not their vectors.
	Dir string
	// HotDays is how many days before today stay unsealed (they still take rows). Default 1.
	HotDays int
}

// Errors.
var (
	ErrDim   = errors.New("vectors: embedding of the wrong length for the index's face model")
	ErrID    = errors.New("vectors: event id must be 22 hex digits")
	ErrRange = errors.New("vectors: query needs a time range with From before To")
)

// Index is the in-memory face vector index. Safe for concurrent use.
type Index struct {
	opts Options
	dim  int

	mu       sync.RWMutex
	parts    map[int32]*part // by day since the epoch (UTC)
	camNames []string
	camIDs   map[string]uint16
	n        int
}

// part is one day of vectors. Rows [0, indexed) are ordered by IVF list; rows after it are the
// tail added since the last build, scanned flat.
type part struct {
	day    int32
	dim    int
	ids    [][11]byte
	times  []int64 // unix ms
	cams   []uint16
	vec    []float32 // n*dim
	q8     []int8    // n*dim
	scale  []float32 // int8 → float scale per row
	norm2  []float32 // squared norm per row
	seen   map[[11]byte]struct{}
	ivf    *ivf
	tailAt int    // rows covered by ivf
	gen    uint64 // bumped whenever rows are reordered or removed
	cold   *cold  // sealed: vec, q8, scale and seen are nil (cold.go)
	late   *part  // rows that came for a sealed day after it was sealed
}

// ivf is a partition's inverted file: centroids and each list's row range.
type ivf struct {
	nlist     int
	centroids []float32 // nlist*dim
	offsets   []int32   // nlist+1
}

// New returns an empty index.
func New(opts Options) *Index {
	if opts.IVFMin <= 0 {
		opts.IVFMin = 20000
	}
	if opts.Rerank <= 0 {
		opts.Rerank = 8
	}
	if opts.Dim <= 0 {
		opts.Dim = DefaultDim
	}
	if opts.HotDays <= 0 {
		opts.HotDays = 1
	}
	return &Index{dim: opts.Dim, opts: opts, parts: map[int32]*part{}, camIDs: map[string]uint16{}}
}

// Len is the number of vectors held.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.n
}

func dayOf(ms int64) int32 { return int32(math.Floor(float64(ms) / 86400000)) }

// Add inserts one face event's embedding; an id already present is ignored (redelivery). It
// reports whether the vector was added.
func (x *Index) Add(id string, t time.Time, camera string, emb []float32) (bool, error) {
	if len(emb) != x.dim {
		return false, ErrDim
	}
	var key [11]byte
	if len(id) != 22 {
		return false, fmt.Errorf("%w: %q", ErrID, id)
	}
	if _, err := hex.Decode(key[:], []byte(id)); err != nil {
		return false, fmt.Errorf("%w: %q", ErrID, id)
	}
	ms := t.UnixMilli()
	x.mu.Lock()
	defer x.mu.Unlock()
	d := dayOf(ms)
	p := x.parts[d]
	if p == nil {
		p = &part{day: d, dim: x.dim, seen: map[[11]byte]struct{}{}}
		x.parts[d] = p
	}
	if p.cold != nil { // a sealed day: late rows go beside it
		if p.coldHas(key) {
			return false, nil
		}
		if p.late == nil {
			p.late = &part{day: d, dim: x.dim}
		}
		p = p.late
	}
	if p.seen == nil {
		p.seen = map[[11]byte]struct{}{}
	}
	if _, dup := p.seen[key]; dup {
		return false, nil
	}
	cam, err := x.camera(camera)
	if err != nil {
		return false, err
	}
	p.seen[key] = struct{}{}
	p.ids = append(p.ids, key)
	p.times = append(p.times, ms)
	p.cams = append(p.cams, cam)
	p.vec = append(p.vec, emb...)
	codes := make([]int8, x.dim)
	s, n2 := quantise(emb, codes)
	p.q8 = append(p.q8, codes...)
	p.scale = append(p.scale, s)
	p.norm2 = append(p.norm2, n2)
	x.n++
	return true, nil
}

// camera is a camera's number in the index. Call with x.mu held for writing.
func (x *Index) camera(name string) (uint16, error) {
	if id, ok := x.camIDs[name]; ok {
		return id, nil
	}
	if len(x.camNames) == math.MaxUint16 {
		return 0, errors.New("vectors: too many cameras")
	}
	id := uint16(len(x.camNames))
	x.camNames = append(x.camNames, name)
	x.camIDs[name] = id
	return id, nil
}

// Reserve makes room for n more vectors on t's day, so a rebuild that knows each day's count
// (from PostgreSQL) fills exactly sized arrays instead of growing them by doubling.
func (x *Index) Reserve(t time.Time, n int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d := dayOf(t.UnixMilli())
	p := x.parts[d]
	if p == nil {
		p = &part{day: d, dim: x.dim}
		x.parts[d] = p
	}
	if p.cold != nil {
		return
	}
	m, dim := len(p.ids)+n, x.dim
	p.ids = slices.Grow(p.ids, n)
	p.times = slices.Grow(p.times, n)
	p.cams = slices.Grow(p.cams, n)
	p.vec = slices.Grow(p.vec, n*dim)
	p.q8 = slices.Grow(p.q8, n*dim)
	p.scale = slices.Grow(p.scale, n)
	p.norm2 = slices.Grow(p.norm2, n)
	seen := make(map[[11]byte]struct{}, m)
	for k := range p.seen {
		seen[k] = struct{}{}
	}
	p.seen = seen
}

// quantise writes v's int8 codes (symmetric, one scale per vector) and returns the scale and v's
// squared norm.
func quantise(v []float32, out []int8) (scale, norm2 float32) {
	var maxAbs float32
	for _, f := range v {
		maxAbs = max(maxAbs, float32(math.Abs(float64(f))))
		norm2 += f * f
	}
	if maxAbs == 0 {
		clear(out)
		return 0, 0
	}
	scale = maxAbs / 127
	for i, f := range v {
		out[i] = int8(math.Round(float64(f / scale)))
	}
	return scale, norm2
}

// RemoveIDs drops vectors by event id (erasure of a person's biometrics). It reports how many
// went; a sealed day that could not be read back keeps its rows, and the error says so.
func (x *Index) RemoveIDs(ids []string) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	drop := map[[11]byte]bool{}
	for _, id := range ids {
		var k [11]byte
		if len(id) == 22 {
			if _, err := hex.Decode(k[:], []byte(id)); err == nil {
				drop[k] = true
			}
		}
	}
	removed := 0
	var errs []error
	var all []*part
	for _, p := range x.parts {
		all = append(all, p)
		if p.late != nil {
			all = append(all, p.late)
		}
	}
	for _, p := range all {
		if p.cold != nil {
			hit := false
			for k := range drop {
				hit = hit || p.coldHas(k)
			}
			if !hit {
				continue
			}
			if err := p.thaw(); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		keep := make([]int32, 0, len(p.ids))
		for i, k := range p.ids {
			if !drop[k] {
				keep = append(keep, int32(i))
			}
		}
		if len(keep) == len(p.ids) {
			continue
		}
		removed += len(p.ids) - len(keep)
		np := p.pick(keep)
		np.gen, np.late = p.gen+1, p.late
		*p = *np // the IVF index goes too: the next Build makes a new one
	}
	x.n -= removed
	return removed, errors.Join(errs...)
}

// pick returns a new part holding the given rows of p, in that order.
func (p *part) pick(rows []int32) *part {
	n, dim := len(rows), p.dim
	np := &part{day: p.day, dim: dim, ids: make([][11]byte, n), times: make([]int64, n), cams: make([]uint16, n),
		vec: make([]float32, n*dim), q8: make([]int8, n*dim), scale: make([]float32, n), norm2: make([]float32, n),
		seen: make(map[[11]byte]struct{}, n)}
	for j, r := range rows {
		np.ids[j], np.times[j], np.cams[j], np.scale[j], np.norm2[j] = p.ids[r], p.times[r], p.cams[r], p.scale[r], p.norm2[r]
		copy(np.vec[j*dim:(j+1)*dim], p.vec[int(r)*dim:(int(r)+1)*dim])
		copy(np.q8[j*dim:(j+1)*dim], p.q8[int(r)*dim:(int(r)+1)*dim])
		np.seen[p.ids[r]] = struct{}{}
	}
	return np
}

// Search returns the K nearest vectors in the query's time range and cameras, nearest first.
func (x *Index) Search(q Query) ([]Hit, error) {
	if len(q.Vector) != x.dim {
		return nil, fmt.Errorf("%w (the index holds %d-value embeddings; this one has %d)", ErrDim, x.dim, len(q.Vector))
	}
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, ErrRange
	}
	if q.K <= 0 {
		q.K = 10
	}
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	x.mu.RLock()
	defer x.mu.RUnlock()
	var camOK []bool
	if len(q.Cameras) > 0 {
		camOK = make([]bool, len(x.camNames))
		any := false
		for _, c := range q.Cameras {
			if id, ok := x.camIDs[c]; ok {
				camOK[id], any = true, true
			}
		}
		if !any {
			return []Hit{}, nil
		}
	}
	var parts []*part
	for d := dayOf(from); d <= dayOf(to-1); d++ {
		if p := x.parts[d]; p != nil && len(p.ids) > 0 {
			parts = append(parts, p)
		}
		if p := x.parts[d]; p != nil && p.late != nil && len(p.late.ids) > 0 {
			parts = append(parts, p.late)
		}
	}
	// Partitions are searched in parallel, each into its own top K, then merged.
	qs := newQueryState(q, x.opts.Rerank)
	results := make([][]cand, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(parts)) {
		wg.Go(func() {
			s := newScratch()
			for i := range next {
				p := parts[i]
				f := filter{from: from, to: to, cams: camOK, whole: p.times[0] >= from && dayEnd(p.day) <= to && camOK == nil}
				results[i], errs[i] = p.search(qs, f, s)
			}
		})
	}
	for i := range parts {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var all, approx []cand
	for i, r := range results {
		for _, c := range r {
			c.part = parts[i]
			if parts[i].cold != nil && qs.Mode != Exact {
				approx = append(approx, c)
			} else {
				all = append(all, c)
			}
		}
	}
	exact, err := rerankCold(qs, approx)
	if err != nil {
		return nil, err
	}
	all = append(all, exact...)
	slices.SortFunc(all, func(a, b cand) int { return cmpF(a.d, b.d) })
	var out []Hit
	for _, c := range all {
		if len(out) == q.K {
			break
		}
		d := float32(math.Sqrt(float64(max(c.d, 0))))
		if q.MaxDistance > 0 && d > q.MaxDistance {
			break
		}
		p := c.part
		out = append(out, Hit{ID: hex.EncodeToString(p.ids[c.row][:]), Time: time.UnixMilli(p.times[c.row]).UTC(),
			Camera: x.camNames[p.cams[c.row]], Distance: d})
	}
	if out == nil {
		out = []Hit{}
	}
	return out, nil
}
