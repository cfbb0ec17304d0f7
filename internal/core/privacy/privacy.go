// Package privacy is a camera's privacy masks: polygons in fractions of the picture (so that one
// mask fits the main stream, the sub-stream and a still alike) that are blacked out before a
// frame is analysed, in snapshots and stills, and in exported footage. Pure Go.
package privacy

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"
	"sync"
)

// Polygon is one masked region: its corners as [x, y] fractions of the picture's width and
// height, in drawing order.
type Polygon [][2]float64

// Masks are a camera's masked regions.
type Masks []Polygon

// Limits of one camera's masks.
const (
	MaxPolygons = 16
	MaxPoints   = 64
)

// ErrInvalid is a mask that does not describe regions of a picture.
var ErrInvalid = errors.New("privacy: invalid mask")

// Check validates the masks: at most 16 polygons of 3 to 64 points, each coordinate 0 to 1.
func (m Masks) Check() error {
	if len(m) > MaxPolygons {
		return fmt.Errorf("%w: at most %d polygons", ErrInvalid, MaxPolygons)
	}
	for i, p := range m {
		if len(p) < 3 || len(p) > MaxPoints {
			return fmt.Errorf("%w: polygon %d has %d points; 3 to %d", ErrInvalid, i, len(p), MaxPoints)
		}
		for _, pt := range p {
			if !(pt[0] >= 0 && pt[0] <= 1 && pt[1] >= 0 && pt[1] <= 1) { // NaN fails too
				return fmt.Errorf("%w: polygon %d: points are [x, y] fractions of the picture, 0 to 1", ErrInvalid, i)
			}
		}
	}
	return nil
}

// Equal reports whether two masks are the same.
func (m Masks) Equal(o Masks) bool {
	return slices.EqualFunc(m, o, func(a, b Polygon) bool { return slices.Equal(a, b) })
}

// Span is a run of masked pixels on row Y: X0 inclusive to X1 exclusive.
type Span struct{ Y, X0, X1 int }

// Spans are the masked pixels of a w×h picture: a pixel is masked when its centre is inside a
// polygon (even-odd rule per polygon; polygons are unioned).
func (m Masks) Spans(w, h int) []Span {
	var out []Span
	xs := make([]float64, 0, 16)
	for _, p := range m {
		for y := range h {
			cy := (float64(y) + 0.5) / float64(h)
			xs = xs[:0]
			for i := range p {
				a, b := p[i], p[(i+1)%len(p)]
				if (a[1] <= cy) == (b[1] <= cy) {
					continue // the edge does not cross this row's centre
				}
				xs = append(xs, a[0]+(cy-a[1])/(b[1]-a[1])*(b[0]-a[0]))
			}
			slices.Sort(xs)
			for i := 0; i+1 < len(xs); i += 2 {
				// pixels whose centre (x+0.5)/w lies in [xs[i], xs[i+1])
				x0 := max(0, int(math.Ceil(xs[i]*float64(w)-0.5)))
				x1 := min(w, int(math.Ceil(xs[i+1]*float64(w)-0.5)))
				if x1 > x0 {
					out = append(out, Span{y, x0, x1})
				}
			}
		}
	}
	return out
}

// Painter blacks out masks in pictures, keeping the spans of the last picture size.
type Painter struct {
	masks Masks
	mu    sync.Mutex
	w, h  int
	spans []Span
}

// NewPainter returns a painter of m (nil when m masks nothing).
func NewPainter(m Masks) *Painter {
	if len(m) == 0 {
		return nil
	}
	return &Painter{masks: m}
}

func (p *Painter) spansFor(w, h int) []Span {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w != p.w || h != p.h {
		p.w, p.h, p.spans = w, h, p.masks.Spans(w, h)
	}
	return p.spans
}

// Spans are the pixels the masks cover in a w×h picture (nil for a nil Painter): what BGR
// paints black, for a caller that reads the picture before it is converted (a motion gate on the
// grey plane).
func (p *Painter) Spans(w, h int) []Span {
	if p == nil {
		return nil
	}
	return p.spansFor(w, h)
}

// BGR blacks out the masks in a packed 3-byte-per-pixel picture (stride bytes per row; 0:
// 3w). A nil painter does nothing.
func (p *Painter) BGR(pix []byte, w, h, stride int) {
	if p == nil {
		return
	}
	if stride == 0 {
		stride = 3 * w
	}
	for _, s := range p.spansFor(w, h) {
		o := s.Y * stride
		clear(pix[o+3*s.X0 : o+3*s.X1])
	}
}

// Image returns img with the masks blacked out (a copy; img is not changed).
func (p *Painter) Image(img image.Image) image.Image {
	if p == nil {
		return img
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	for _, s := range p.spansFor(b.Dx(), b.Dy()) {
		o := s.Y*out.Stride + 4*s.X0
		for i := o; i < o+4*(s.X1-s.X0); i += 4 {
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = 0, 0, 0, 255
		}
	}
	return out
}

// Overlay is the masks as a w×h picture, opaque black where masked and transparent elsewhere:
// what an encoder lays over footage to export it masked.
func (m Masks) Overlay(w, h int) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for _, s := range m.Spans(w, h) {
		for x := s.X0; x < s.X1; x++ {
			out.SetNRGBA(x, s.Y, color.NRGBA{A: 255})
		}
	}
	return out
}
