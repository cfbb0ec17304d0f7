package vectors

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Build gives every partition of at least Options.IVFMin rows an IVF index (or rebuilds it when
// its unindexed tail has grown past half the indexed rows). Searches go on meanwhile: each
// partition is clustered from a snapshot of its rows and swapped in under a short lock. progress,
// when not nil, is called after each partition with the rows done and the rows to do.
func (x *Index) Build(progress func(done, total int)) {
	x.mu.RLock()
	var todo []*part
	total := 0
	for _, p := range x.parts {
		n := len(p.ids)
		if n >= x.opts.IVFMin && (p.ivf == nil || n-p.tailAt > p.tailAt/2) {
			todo = append(todo, p)
			total += n
		}
	}
	x.mu.RUnlock()
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	next := make(chan *part)
	for range min(runtime.GOMAXPROCS(0), max(len(todo), 1)) {
		wg.Go(func() {
			for p := range next {
				n := x.buildPart(p)
				mu.Lock()
				done += n
				if progress != nil {
					progress(done, total)
				}
				mu.Unlock()
			}
		})
	}
	for _, p := range todo {
		next <- p
	}
	close(next)
	wg.Wait()
}

// buildPart clusters a partition's rows and reorders them by list. It returns the rows indexed.
func (x *Index) buildPart(p *part) int {
	x.mu.RLock()
	snap := *p // slices are append-only: rows [0, n) of the snapshot stay valid
	x.mu.RUnlock()
	n, dim := len(snap.ids), x.dim
	nlist := min(max(int(math.Round(math.Sqrt(float64(n)))), 16), 1024)
	rng := rand.New(rand.NewPCG(uint64(p.day), uint64(n)))
	centroids := kmeans(snap.vec[:n*dim], n, nlist, rng)
	// Assign every row to its nearest centroid, then lay the rows out list by list.
	assign := make([]int32, n)
	dist := make([]float32, nlist)
	counts := make([]int32, nlist+1)
	for r := range n {
		l2(snap.vec[r*dim:(r+1)*dim], centroids, dist)
		assign[r] = argmin(dist)
		counts[assign[r]+1]++
	}
	for l := 1; l <= nlist; l++ {
		counts[l] += counts[l-1]
	}
	offsets := append([]int32(nil), counts...)
	order := make([]int32, n)
	for r := range n {
		l := assign[r]
		order[counts[l]] = int32(r)
		counts[l]++
	}
	np := snap.pick(order)
	np.ivf = &ivf{nlist: nlist, centroids: centroids, offsets: offsets}
	np.tailAt = n

	x.mu.Lock()
	defer x.mu.Unlock()
	if p.gen != snap.gen {
		return n // rows removed meanwhile: the next Build starts over
	}
	for r := n; r < len(p.ids); r++ { // rows added while we clustered
		np.ids = append(np.ids, p.ids[r])
		np.times = append(np.times, p.times[r])
		np.cams = append(np.cams, p.cams[r])
		np.vec = append(np.vec, p.vec[r*dim:(r+1)*dim]...)
		np.q8 = append(np.q8, p.q8[r*dim:(r+1)*dim]...)
		np.scale = append(np.scale, p.scale[r])
		np.norm2 = append(np.norm2, p.norm2[r])
		np.seen[p.ids[r]] = struct{}{}
	}
	np.gen = p.gen + 1
	*p = *np
	return n
}

func argmin(d []float32) int32 {
	best := 0
	for i, v := range d {
		if v < d[best] {
			best = i
		}
	}
	return int32(best)
}

// kmeans clusters n vectors into k centroids: k-means++-style seeding from a sample, then a few
// Lloyd iterations on the sample (40 points per centroid are plenty for an inverted file).
func kmeans(vec []float32, n, k int, rng *rand.Rand) []float32 {
	dim := len(vec) / n
	sample := rng.Perm(n)[:min(n, 40*k)]
	m := len(sample)
	pts := make([]float32, m*dim)
	for i, r := range sample {
		copy(pts[i*dim:(i+1)*dim], vec[r*dim:(r+1)*dim])
	}
	cent := make([]float32, k*dim)
	// Seeding: each next centroid is drawn with probability proportional to the squared distance
	// to the nearest one chosen so far.
	first := rng.IntN(m)
	copy(cent[:dim], pts[first*dim:(first+1)*dim])
	near := make([]float32, m)
	l2(cent[:dim], pts, near)
	one := make([]float32, m)
	for c := 1; c < k; c++ {
		var sum float64
		for _, d := range near {
			sum += float64(d)
		}
		pick := rng.IntN(m)
		if sum > 0 {
			t := rng.Float64() * sum
			for i, d := range near {
				t -= float64(d)
				if t <= 0 {
					pick = i
					break
				}
			}
		}
		copy(cent[c*dim:(c+1)*dim], pts[pick*dim:(pick+1)*dim])
		l2(cent[c*dim:(c+1)*dim], pts, one)
		for i := range near {
			near[i] = min(near[i], one[i])
		}
	}
	assign := make([]int32, m)
	dist := make([]float32, k)
	sums := make([]float64, k*dim)
	counts := make([]int, k)
	for range 6 {
		for i := range m {
			l2(pts[i*dim:(i+1)*dim], cent, dist)
			assign[i] = argmin(dist)
		}
		clear(sums)
		clear(counts)
		for i := range m {
			c := int(assign[i])
			counts[c]++
			for j := range dim {
				sums[c*dim+j] += float64(pts[i*dim+j])
			}
		}
		for c := range k {
			if counts[c] == 0 { // an empty list takes a random point
				r := rng.IntN(m)
				copy(cent[c*dim:(c+1)*dim], pts[r*dim:(r+1)*dim])
				continue
			}
			for j := range dim {
				cent[c*dim+j] = float32(sums[c*dim+j] / float64(counts[c]))
			}
		}
	}
	return cent
}
