package vectors

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unsafe"
)

// Cold partitions. With Options.Dir set, a day that has its IVF lists and takes no new rows
// (older than Options.HotDays) is sealed: its float32 vectors move to a file under Dir, read
// back only to re-rank a query's candidates (pread, so they stay in the page cache, never in the
// process); its int8 codes become signed 4-bit codes, half the bytes; its redelivery check
// becomes a sorted row order by id. What stays in memory per 256-d vector is 128 bytes of codes
// and 33 of row data, so 16 M vectors fit in about 2.6 GB. The sealed day is also written as a
// snapshot (Dir/DAY.idx), from which a restarted node is ready in seconds instead of reading
// every embedding back from PostgreSQL.
//
// Rows that arrive for a sealed day later (a redelivery after an outage) go to a small hot
// partition beside it (late). An erasure thaws the day (reads its vectors back), removes the
// rows, and deletes its files; the next Build seals it again.

// cold is a sealed partition's codes and its vector file.
type cold struct {
	q4     []byte    // n*dim/2: two signed 4-bit codes a byte, the even value low
	scale4 []float32 // 4-bit code → float scale per row
	byID   []int32   // rows in id order (redeliveries are found by binary search)
	f      *os.File  // n*dim float32, little-endian, row order
	path   string    // of the vector file; the snapshot is path with .idx for .vec
}

// quantise4 writes v's signed 4-bit codes (symmetric, one scale per vector) packed two a byte.
// The step is 0.36 of the values' root mean square (near the best uniform 15-level quantiser
// for a bell-shaped spread), so the rare values past ±2.5 RMS are clipped rather than every
// value coded coarsely.
func quantise4(v []float32, out []byte) float32 {
	var sum float64
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	if sum == 0 {
		clear(out)
		return 0
	}
	scale := float32(0.36 * math.Sqrt(sum/float64(len(v))))
	code := func(f float32) byte {
		c := int(math.Round(float64(f / scale)))
		return byte(int8(min(max(c, -7), 7))) & 0x0f
	}
	for j := 0; j < len(v); j += 2 {
		out[j/2] = code(v[j]) | code(v[j+1])<<4
	}
	return scale
}

func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

// sealable reports whether a partition can be sealed now.
func (x *Index) sealable(p *part, now time.Time) bool {
	return x.opts.Dir != "" && p.cold == nil && p.ivf != nil && p.tailAt == len(p.ids) &&
		dayEnd(p.day) < now.AddDate(0, 0, -x.opts.HotDays).UnixMilli()
}

// seal moves a built partition's vectors to its file and its codes to 4 bits, and writes its
// snapshot. It reports whether it sealed (rows added or removed meanwhile: not this time).
func (x *Index) seal(p *part) (bool, error) {
	x.mu.RLock()
	snap := *p
	x.mu.RUnlock()
	n, dim := len(snap.ids), x.dim
	if err := os.MkdirAll(x.opts.Dir, 0o700); err != nil {
		return false, err
	}
	path := filepath.Join(x.opts.Dir, fmt.Sprintf("%d.vec", p.day))
	if err := writeFile(path, floatBytes(snap.vec[:n*dim])); err != nil {
		return false, err
	}
	c := &cold{q4: make([]byte, n*dim/2), scale4: make([]float32, n), byID: make([]int32, n), path: path}
	for r := range n {
		c.scale4[r] = quantise4(snap.vec[r*dim:(r+1)*dim], c.q4[r*dim/2:(r+1)*dim/2])
		c.byID[r] = int32(r)
	}
	slices.SortFunc(c.byID, func(a, b int32) int { return bytes.Compare(snap.ids[a][:], snap.ids[b][:]) })
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	c.f = f
	x.mu.Lock()
	if p.gen != snap.gen || len(p.ids) != n || p.cold != nil {
		x.mu.Unlock()
		f.Close()
		return false, nil
	}
	p.vec, p.q8, p.scale, p.seen, p.cold = nil, nil, nil, nil, c
	err = x.writeSnapshot(p)
	x.mu.Unlock()
	return true, err
}

// writeFile writes data to path through a temporary file and a rename.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// coldHas reports whether a sealed partition holds id.
func (p *part) coldHas(key [11]byte) bool {
	_, ok := slices.BinarySearchFunc(p.cold.byID, key, func(r int32, k [11]byte) int { return bytes.Compare(p.ids[r][:], k[:]) })
	return ok
}

// readRows reads rows' float32 vectors from a sealed partition's file into out (len(rows)*dim),
// in the order given.
func (p *part) readRows(rows []int32, out []float32) error {
	dim := p.dim
	buf := floatBytes(out)
	for i, r := range rows {
		if _, err := p.cold.f.ReadAt(buf[i*dim*4:(i+1)*dim*4], int64(r)*int64(dim)*4); err != nil {
			return fmt.Errorf("vectors: day %d row %d: %w", p.day, r, err)
		}
	}
	return nil
}

// thaw reads a sealed partition's vectors back into memory and deletes its files (an erasure
// must not leave vectors on disk). Call with x.mu held for writing.
func (p *part) thaw() error {
	n, dim := len(p.ids), p.dim
	vec := make([]float32, n*dim)
	if _, err := p.cold.f.ReadAt(floatBytes(vec), 0); err != nil {
		return fmt.Errorf("vectors: thawing day %d: %w", p.day, err)
	}
	p.vec, p.q8, p.scale, p.seen = vec, make([]int8, n*dim), make([]float32, n), make(map[[11]byte]struct{}, n)
	for r := range n {
		p.scale[r], _ = quantise(vec[r*dim:(r+1)*dim], p.q8[r*dim:(r+1)*dim])
		p.seen[p.ids[r]] = struct{}{}
	}
	p.cold.f.Close()
	err := errors.Join(removeIfThere(p.cold.path), removeIfThere(snapshotPath(p.cold.path)))
	p.cold = nil
	return err
}

func removeIfThere(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func snapshotPath(vecPath string) string { return vecPath[:len(vecPath)-len(".vec")] + ".idx" }

// Seal seals every day that has its IVF lists and is older than Options.HotDays (none without
// Options.Dir), and reports how many it sealed. Build first.
func (x *Index) Seal() (int, error) {
	if x.opts.Dir == "" {
		return 0, nil
	}
	now := time.Now()
	x.mu.RLock()
	var todo []*part
	for _, p := range x.parts {
		if x.sealable(p, now) {
			todo = append(todo, p)
		}
	}
	x.mu.RUnlock()
	sealed := 0
	var errs []error
	for _, p := range todo {
		ok, err := x.seal(p)
		if ok {
			sealed++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sealed, errors.Join(errs...)
}

// BuildDay builds the IVF lists of t's day and seals it when it can (a bulk load, one day at a
// time, keeps only the days in progress unsealed).
func (x *Index) BuildDay(t time.Time) error {
	x.mu.RLock()
	p := x.parts[dayOf(t.UnixMilli())]
	x.mu.RUnlock()
	if p == nil {
		return nil
	}
	if len(p.ids) >= x.opts.IVFMin && p.cold == nil {
		x.buildPart(p)
	}
	x.mu.RLock()
	ok := x.sealable(p, time.Now())
	x.mu.RUnlock()
	if !ok {
		return nil
	}
	_, err := x.seal(p)
	return err
}

// rerankCold takes the sealed days' approximate candidates of a query, keeps the best
// K × Rerank × 4 of them over all days, reads their vectors back and returns them with exact
// distances. Re-ranking across days rather than per day reads a few hundred vectors a query
// however many days it spans.
func rerankCold(q *queryState, approx []cand) ([]cand, error) {
	if len(approx) == 0 {
		return nil, nil
	}
	slices.SortFunc(approx, func(a, b cand) int { return cmpF(a.d, b.d) })
	approx = approx[:min(len(approx), 4*q.cands)]
	byPart := map[*part][]int32{}
	for _, c := range approx {
		byPart[c.part] = append(byPart[c.part], c.row)
	}
	out := make([]cand, 0, len(approx))
	for p, rows := range byPart {
		slices.Sort(rows) // the file is read in order
		vecs := make([]float32, len(rows)*p.dim)
		if err := p.readRows(rows, vecs); err != nil {
			return nil, err
		}
		d := make([]float32, len(rows))
		l2(q.Vector, vecs, d)
		for i, r := range rows {
			out = append(out, cand{row: r, d: d[i], part: p})
		}
	}
	return out, nil
}
