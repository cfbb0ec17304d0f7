package access

import (
	"hash/fnv"
	"math/rand/v2"

	"github.com/vigil-oss/vigil/internal/core/space"
)

// SyntheticFace is a made-up embedding of sp for name: the same name always gives the same unit
// vector, and two names give vectors far apart (as two strangers' faces). For tests and demos
// that exercise the door rules without pictures.
func SyntheticFace(sp space.Space, name string) []float32 {
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(h.Sum64(), 11))
	v := make([]float32, sp.Dims)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	space.Normalize(v)
	return v
}
