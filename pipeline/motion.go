package pipeline

import (
	"math"
	"time"
)

// motionGate skips inference on still scenes: it compares a coarse grey thumbnail (64×36 blocks
// of 4×4 pixel averages) of each sampled frame with the last one that passed. Owned by the
// camera's analyser goroutine.
type motionGate struct {
	threshold float64 // mean absolute difference in grey levels; <0 disables the gate
	maxIdle   time.Duration
	prev      []float32
	lastPass  time.Duration
	started   bool
}

const gateW, gateH = 64, 36

func (g *motionGate) pass(bgr []byte, w, h int, pts time.Duration, busy bool) bool {
	thumb := thumbnail(bgr, w, h)
	if g.threshold < 0 || !g.started || busy || pts-g.lastPass >= g.maxIdle || thumb == nil {
		g.accept(thumb, pts)
		return true
	}
	var sum float64
	for i := range thumb {
		sum += math.Abs(float64(thumb[i] - g.prev[i]))
	}
	if sum/float64(len(thumb)) < g.threshold {
		return false
	}
	g.accept(thumb, pts)
	return true
}

func (g *motionGate) accept(thumb []float32, pts time.Duration) {
	g.prev, g.lastPass, g.started = thumb, pts, true
}

func thumbnail(bgr []byte, w, h int) []float32 {
	if w < gateW*4 || h < gateH*4 || len(bgr) < w*h*3 {
		return nil
	}
	out := make([]float32, gateW*gateH)
	for gy := 0; gy < gateH; gy++ {
		y0 := gy * h / gateH
		for gx := 0; gx < gateW; gx++ {
			x0 := gx * w / gateW
			var s int
			for dy := 0; dy < 4; dy++ {
				row := (y0 + dy) * w * 3
				for dx := 0; dx < 4; dx++ {
					p := row + (x0+dx)*3
					s += int(bgr[p]) + 2*int(bgr[p+1]) + int(bgr[p+2])
				}
			}
			out[gy*gateW+gx] = float32(s) / 64
		}
	}
	return out
}
