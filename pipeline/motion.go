package pipeline

import (
	"image"
	"time"

	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/streams/decode"
)

// motionGate spends the models only where something moves. It compares a coarse grey thumbnail
// of each sampled frame (a 64×36 grid of blocks, each the mean of 4×4 pixels) with a reference:
// the last frame that passed, or, on a still scene, one refreshed every maxIdle so that slow
// light changes never add up to movement.
//
//   - Nothing moved (no block changed by blockFactor × threshold grey levels, out of the range
//     the block keeps varying in, in a group of at least minMoved blocks): the frame does not
//     pass, and no detector runs. A tree swaying, a flag, rain or a flickering lamp are learned
//     as what those blocks always do (settle); a passer-by against a still wall is not.
//   - Some blocks moved: the frame passes with their regions (grown by a margin, overlapping
//     ones merged), and the face detector runs on those only, while they cover at most
//     maxRegionShare of the frame.
//   - A track is in progress: the frame passes, with the regions that moved and those around
//     where each track was last seen (someone may stand still at a door); the whole frame when
//     the gate does not know where (a track without a box).
//   - Most of the picture changed (lights, a crowd, a camera moved): the whole frame passes.
//
// Owned by the camera's analyser goroutine.
type motionGate struct {
	threshold float64 // grey levels; a block moved by blockFactor × this; <0 disables the gate
	maxIdle   time.Duration
	prev      []float32
	lastRef   time.Duration
	started   bool
	// mean and vari are each block's grey level over about restlessSpan samples, and how much
	// it varies: a block moves only when it leaves its usual range (restlessK deviations), so
	// a tree in the wind, a flag or a screen, which vary all the time, do not wake the detector,
	// and a passer-by against a still wall does.
	mean, vari []float32
}

const (
	gateW, gateH = 64, 36
	// blockFactor × threshold is the change of one block that counts as movement (9 grey levels
	// by default: well above sensor and encoder noise, rain or a flickering lamp, well under a
	// person against a wall).
	blockFactor = 6
	// regionMargin blocks grow each region: a face is detected whole even when only part of the
	// person moved.
	regionMargin = 2
	// Regions covering more than this share of the frame are not worth cutting out.
	maxRegionShare = 0.5
)

// pass reports whether the frame goes to the recognizers and, when only parts of it moved, the
// regions in frame pixels (nil: the whole frame).
func (g *motionGate) pass(bgr []byte, w, h int, pts time.Duration, busy bool, tracks []Frac) (bool, []image.Rectangle) {
	return g.passThumb(thumbnail(bgr, w, h), w, h, pts, busy, tracks)
}

// passThumb is pass on the frame's thumbnail (nil: the frame is too small to gate, it passes).
func (g *motionGate) passThumb(thumb []float32, w, h int, pts time.Duration, busy bool, tracks []Frac) (bool, []image.Rectangle) {
	if g.threshold < 0 || !g.started || thumb == nil {
		g.accept(thumb, pts)
		return true, nil
	}
	moved := make([]bool, len(thumb))
	block := float32(g.threshold * blockFactor)
	for i := range thumb {
		if d := thumb[i] - g.prev[i]; d >= block || -d >= block {
			moved[i] = true
		}
	}
	any := g.settle(thumb, moved)
	switch {
	case busy:
		g.accept(thumb, pts)
		if len(tracks) == 0 {
			return true, nil
		}
		markTracks(moved, tracks)
		return true, regions(moved, w, h)
	case any:
		g.accept(thumb, pts)
		return true, regions(moved, w, h)
	}
	if pts-g.lastRef >= g.maxIdle {
		g.accept(thumb, pts) // a still scene: follow the light, run nothing
	}
	return false, nil
}

const (
	// restlessSpan is about how many samples a block's usual grey level and its variation
	// average over, and restlessK how many deviations from it count as moving.
	restlessSpan = 48
	restlessK    = 3
	// minMoved is the fewest connected moved blocks (4×4-pixel samples of a 64×36 grid) that
	// count as something moving: a passer-by's head and shoulders move many; a rain streak,
	// a flicker or encoder noise one or two.
	minMoved = 3
)

// settle learns each block's usual grey level from this sample, then keeps in moved only the
// blocks that count: out of their usual range, in a group of at least minMoved. It reports
// whether any is left.
func (g *motionGate) settle(thumb []float32, moved []bool) bool {
	if len(g.mean) != len(thumb) { // learning starts from the reference
		g.mean, g.vari = append([]float32(nil), g.prev...), make([]float32, len(thumb))
	}
	for i, x := range thumb {
		if d := x - g.mean[i]; moved[i] && d*d <= restlessK*restlessK*g.vari[i] {
			moved[i] = false // within what this block always does
		}
	}
	defer g.learn(thumb, moved)
	any := false
	eachGroup(moved, func(group []int) {
		if len(group) < minMoved {
			for _, c := range group {
				moved[c] = false
			}
			return
		}
		any = true
	})
	return any
}

// eachGroup calls fn with each group of connected moved blocks (8-neighbours), block indices
// in the order found; fn may clear the group's blocks in moved.
func eachGroup(moved []bool, fn func(group []int)) {
	seen := make([]bool, len(moved))
	var group, stack []int
	for i, m := range moved {
		if !m || seen[i] {
			continue
		}
		group = group[:0]
		seen[i] = true
		stack = append(stack[:0], i)
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			group = append(group, c)
			forNeighbours(c, func(n int) {
				if moved[n] && !seen[n] {
					seen[n] = true
					stack = append(stack, n)
				}
			})
		}
		fn(group)
	}
}

// learn moves each block's usual level and variation toward this sample: slowly where something
// moved (a passer-by must not teach the gate that a busy doorway always varies, or the next one
// would be hidden there), at the full rate elsewhere; something that keeps moving (a tree) is
// learned all the same, over a few spans.
func (g *motionGate) learn(thumb []float32, moved []bool) {
	for i, x := range thumb {
		span := float32(restlessSpan)
		if moved[i] {
			span *= 4
		}
		d := x - g.mean[i]
		g.mean[i] += d / span
		g.vari[i] += (d*d - g.vari[i]) / span
	}
}

// forNeighbours calls fn with each of block c's eight neighbours on the grid.
func forNeighbours(c int, fn func(n int)) {
	x, y := c%gateW, c/gateW
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			nx, ny := x+dx, y+dy
			if (dx != 0 || dy != 0) && nx >= 0 && ny >= 0 && nx < gateW && ny < gateH {
				fn(ny*gateW + nx)
			}
		}
	}
}

// trackGrowth is how far around a track's last box the detector looks, in box sizes on each
// side: a walker moves about one face width between samples.
const trackGrowth = 1

// markTracks marks the blocks around each track's last box as moved.
func markTracks(moved []bool, tracks []Frac) {
	for _, t := range tracks {
		dw, dh := (t[2]-t[0])*trackGrowth, (t[3]-t[1])*trackGrowth
		x0, y0 := int((t[0]-dw)*gateW), int((t[1]-dh)*gateH)
		x1, y1 := int((t[2]+dw)*gateW+0.999), int((t[3]+dh)*gateH+0.999)
		for y := max(y0, 0); y < min(y1, gateH); y++ {
			for x := max(x0, 0); x < min(x1, gateW); x++ {
				moved[y*gateW+x] = true
			}
		}
	}
}

func (g *motionGate) accept(thumb []float32, pts time.Duration) {
	g.prev, g.lastRef, g.started = thumb, pts, thumb != nil
}

// regions returns the bounding boxes of the connected groups of moved blocks, each grown by
// regionMargin blocks, overlapping ones merged, in frame pixels; nil when they cover more than
// maxRegionShare of the frame.
func regions(moved []bool, w, h int) []image.Rectangle {
	var boxes []image.Rectangle // in blocks
	eachGroup(moved, func(group []int) {
		var r image.Rectangle
		for _, c := range group {
			r = r.Union(image.Rect(c%gateW, c/gateW, c%gateW+1, c/gateW+1))
		}
		boxes = append(boxes, r.Inset(-regionMargin).Intersect(image.Rect(0, 0, gateW, gateH)))
	})
	boxes = mergeOverlapping(boxes)
	area := 0
	out := make([]image.Rectangle, len(boxes))
	for i, b := range boxes {
		out[i] = image.Rect(b.Min.X*w/gateW, b.Min.Y*h/gateH, b.Max.X*w/gateW, b.Max.Y*h/gateH)
		area += out[i].Dx() * out[i].Dy()
	}
	if float64(area) > maxRegionShare*float64(w*h) {
		return nil
	}
	return out
}

// mergeOverlapping unites rectangles that overlap until none do.
func mergeOverlapping(rs []image.Rectangle) []image.Rectangle {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(rs) && !merged; i++ {
			for j := i + 1; j < len(rs); j++ {
				if rs[i].Overlaps(rs[j]) {
					rs[i] = rs[i].Union(rs[j])
					rs = append(rs[:j], rs[j+1:]...)
					merged = true
					break
				}
			}
		}
	}
	return rs
}

// thumbnail is the grey thumbnail: each block the mean of 4×4 pixels at its top left, grey as
// (B + 2G + R) / 4; nil for a frame under 256×144.
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

// greyThumbs makes the gate's thumbnails from decoded pictures' grey planes, before any
// conversion to BGR: the analyser converts a picture only when the gate passes it, and on the
// site's cameras it holds most. Y is BT.601 luma (0.30 R + 0.59 G + 0.11 B) where thumbnail's
// grey is (R + 2G + B) / 4: the same scale and close enough for a gate; video-range Y is mapped
// to 0–255 as the conversion would. The camera's privacy masks count black, as Painter.BGR
// paints them before thumbnail sees a picture. Owned by the camera's analyser goroutine.
type greyThumbs struct {
	mask   *privacy.Painter
	w, h   int
	masked []bool // per sampled pixel (16 a block, block by block), nil: no mask covers any
}

// videoRange maps video-range luma (16–235) to 0–255, clamped, as a conversion to BGR does;
// fullRange leaves full-range luma as it is.
var videoRange, fullRange = func() (v, f [256]int32) {
	for y := range v {
		v[y] = int32(min(255, max(0, (y-16)*255*2/219+1)/2))
		f[y] = int32(y)
	}
	return v, f
}()

// of is l's thumbnail; nil for a picture under 256×144 or without a grey plane (l.Y nil).
func (g *greyThumbs) of(l *decode.Luma) []float32 {
	w, h := l.Width, l.Height
	if w < gateW*4 || h < gateH*4 || l.Y == nil {
		return nil
	}
	if w != g.w || h != g.h {
		g.w, g.h, g.masked = w, h, maskedSamples(g.mask.Spans(w, h), w, h)
	}
	grey := &videoRange
	if l.Full {
		grey = &fullRange
	}
	out := make([]float32, gateW*gateH)
	k := 0
	for gy := 0; gy < gateH; gy++ {
		y0 := gy * h / gateH
		for gx := 0; gx < gateW; gx++ {
			x0 := gx * w / gateW
			var s int32
			for dy := 0; dy < 4; dy++ {
				row := l.Y[(y0+dy)*l.Stride+x0:]
				for dx := 0; dx < 4; dx++ {
					v := grey[row[dx]]
					if g.masked != nil && g.masked[k] {
						v = 0
					}
					s += v
					k++
				}
			}
			out[gy*gateW+gx] = float32(s) / 16
		}
	}
	return out
}

// maskedSamples says which of the thumbnail's sampled pixels the spans cover, in the order
// greyThumbs.of visits them; nil when none is.
func maskedSamples(spans []privacy.Span, w, h int) []bool {
	if len(spans) == 0 {
		return nil
	}
	row := make(map[int]int, gateH*4) // picture row → its sample row (gy*4 + dy)
	for gy := 0; gy < gateH; gy++ {
		for dy := 0; dy < 4; dy++ {
			row[gy*h/gateH+dy] = gy*4 + dy
		}
	}
	out := make([]bool, gateW*gateH*16)
	any := false
	for _, s := range spans {
		r, ok := row[s.Y]
		if !ok {
			continue
		}
		gy, dy := r/4, r%4
		for gx := 0; gx < gateW; gx++ {
			x0 := gx * w / gateW
			for dx := 0; dx < 4; dx++ {
				if x := x0 + dx; x >= s.X0 && x < s.X1 {
					out[(gy*gateW+gx)*16+dy*4+dx] = true
					any = true
				}
			}
		}
	}
	if !any {
		return nil
	}
	return out
}
