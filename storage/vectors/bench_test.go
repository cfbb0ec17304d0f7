package vectors

import (
	"math/rand/v2"
	"testing"
)

// Kernel throughput over 4096 vectors (2 MB float32, 512 KB int8): bytes per second scanned.
func BenchmarkL2(b *testing.B) {
	q, base := make([]float32, DefaultDim), make([]float32, 4096*DefaultDim)
	for i := range base {
		base[i] = rand.Float32()
	}
	out := make([]float32, 4096)
	b.SetBytes(int64(len(base) * 4))
	for b.Loop() {
		l2(q, base, out)
	}
}

func BenchmarkDot8(b *testing.B) {
	q, base := make([]int8, DefaultDim), make([]int8, 4096*DefaultDim)
	for i := range base {
		base[i] = int8(rand.IntN(256) - 128)
	}
	out := make([]int32, 4096)
	b.SetBytes(int64(len(base)))
	for b.Loop() {
		dot8(q, base, out)
	}
}
