package vectors

import (
	"math"
	"math/rand/v2"

	"github.com/vigil-oss/vigil/internal/core/space"
)

// Synth makes face-like embeddings for tests and benchmarks: identities are random points, each
// capture is its identity plus noise, scaled like the ResNet embedder's output (two captures of
// one person ~0.38 apart, two people ~0.9 apart).
type Synth struct {
	dim     int
	centers []float32
	unit    bool // captures are unit vectors (NewSynthLike)
}

// Synthetic spreads.
const (
	synthCenterSD = 0.9 / 16  // per dimension: sqrt(2·128)·sd ≈ 0.9 between identities
	synthNoiseSD  = 0.38 / 16 // ≈ 0.38 between two captures of one identity
)

// NewSynth draws n identities of dim values.
func NewSynth(seed uint64, n, dim int) *Synth {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &Synth{dim: dim, centers: make([]float32, n*dim)}
	k := math.Sqrt(128 / float64(dim)) // the same distances whatever the length
	for i := range s.centers {
		s.centers[i] = float32(rng.NormFloat64() * synthCenterSD * k)
	}
	return s
}

// Identities is how many identities there are.
func (s *Synth) Identities() int { return len(s.centers) / s.dim }

// Capture writes one capture of identity id into out (len dim).
func (s *Synth) Capture(id int, rng *rand.Rand, out []float32) {
	c := s.centers[id*s.dim : (id+1)*s.dim]
	if s.unit {
		sd := 0.65 / math.Sqrt(float64(s.dim)) // ≈ 0.9 between two unit captures
		for j := range out {
			out[j] = c[j] + float32(rng.NormFloat64()*sd)
		}
		space.Normalize(out)
		return
	}
	k := math.Sqrt(128 / float64(s.dim))
	for j := range out {
		out[j] = c[j] + float32(rng.NormFloat64()*synthNoiseSD*k)
	}
}

// NewSynthLike draws n identities shaped like real embeddings: each dimension's mean and spread
// are like's, and every capture is scaled to unit length (a cosine space), two captures of one
// identity about 0.9 apart. Real faces then sit among the distractors as they would among
// other real faces.
func NewSynthLike(seed uint64, n int, like [][]float32) *Synth {
	dim := len(like[0])
	mean, sd := make([]float64, dim), make([]float64, dim)
	for _, v := range like {
		for j, x := range v {
			mean[j] += float64(x) / float64(len(like))
		}
	}
	for _, v := range like {
		for j, x := range v {
			d := float64(x) - mean[j]
			sd[j] += d * d / float64(len(like))
		}
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &Synth{dim: dim, centers: make([]float32, n*dim), unit: true}
	for i := range n {
		c := s.centers[i*dim : (i+1)*dim]
		for j := range c {
			c[j] = float32(mean[j] + rng.NormFloat64()*math.Sqrt(sd[j]))
		}
		space.Normalize(c)
	}
	return s
}
