package vectors

import (
	"math/rand/v2"
)

// Synth makes face-like embeddings for tests and benchmarks: identities are random points, each
// capture is its identity plus noise, scaled like the ResNet embedder's output (two captures of
// one person ~0.38 apart, two people ~0.9 apart).
type Synth struct {
	centers []float32
}

// Synthetic spreads.
const (
	synthCenterSD = 0.9 / 16  // per dimension: sqrt(2·128)·sd ≈ 0.9 between identities
	synthNoiseSD  = 0.38 / 16 // ≈ 0.38 between two captures of one identity
)

// NewSynth draws n identities.
func NewSynth(seed uint64, n int) *Synth {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &Synth{centers: make([]float32, n*Dim)}
	for i := range s.centers {
		s.centers[i] = float32(rng.NormFloat64() * synthCenterSD)
	}
	return s
}

// Identities is how many identities there are.
func (s *Synth) Identities() int { return len(s.centers) / Dim }

// Capture writes one capture of identity id into out (len Dim).
func (s *Synth) Capture(id int, rng *rand.Rand, out []float32) {
	c := s.centers[id*Dim : (id+1)*Dim]
	for j := range out {
		out[j] = c[j] + float32(rng.NormFloat64()*synthNoiseSD)
	}
}
