package camsim

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
)

// Places a Look may show.
const (
	PlaceStreet = "street" // an alley: people pass at 40–120 px faces, several at once
	PlaceDoor   = "door"   // a building's entrance seen by its door unit: residents up close
	PlaceGate   = "gate"   // the community's vehicle gate: cars with plates
)

// Look is how a scene looks apart from its passages: the place, and the background motion a
// real camera sees all day (DESIGN's load model) that must not cost a detector run.
type Look struct {
	Place  string `json:",omitempty"` // street (default), door or gate
	Tree   bool   `json:",omitempty"` // a tree sways in the wind, one sway per clip, so clips join
	Lights bool   `json:",omitempty"` // a window's light switches on halfway through the clip
	Rain   bool   `json:",omitempty"` // light rain over the whole picture
}

// backgroundFor renders the place's background.
func backgroundFor(l *Look, w, h int, rng *rand.Rand) *image.RGBA {
	img := background(w, h, rng)
	if l == nil {
		return img
	}
	switch l.Place {
	case PlaceDoor: // an entrance close up: the door's frame fills the middle of the picture
		fill(img, image.Rect(w/4, h/12, w*3/4, h), color.RGBA{70, 55, 45, 255})
		fill(img, image.Rect(w/4+w/40, h/12+h/40, w*3/4-w/40, h), color.RGBA{150, 160, 165, 255})
	case PlaceGate: // a road through a barrier
		fill(img, image.Rect(0, h*11/20, w, h), color.RGBA{60, 62, 66, 255})
		fill(img, image.Rect(w/10, h/2, w/10+w/50, h*11/20), color.RGBA{200, 40, 40, 255})
		for x := 0; x < w; x += w / 8 {
			fill(img, image.Rect(x, h*4/5, x+w/16, h*4/5+h/80), color.RGBA{230, 230, 230, 255})
		}
	}
	return img
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

// extras draws the look's background motion into frame i of n (fps frames a second).
type extras struct {
	look   *Look
	w, h   int
	canopy *image.RGBA
	mask   *image.Alpha
	window image.Rectangle
	seed   uint64
}

func newExtras(l *Look, w, h int, rng *rand.Rand) *extras {
	if l == nil {
		return nil
	}
	e := &extras{look: l, w: w, h: h, seed: rng.Uint64()}
	if l.Tree {
		cw, ch := w/7, h/3
		e.canopy = image.NewRGBA(image.Rect(0, 0, cw, ch))
		e.mask = image.NewAlpha(e.canopy.Bounds())
		for y := 0; y < ch; y++ {
			for x := 0; x < cw; x++ {
				dx, dy := float64(2*x-cw)/float64(cw), float64(2*y-ch)/float64(ch)
				if dx*dx+dy*dy < 1 {
					g := uint8(90 + rng.IntN(70)) // leaves: texture that moves with the wind
					e.canopy.SetRGBA(x, y, color.RGBA{uint8(30 + rng.IntN(30)), g, 35, 255})
					e.mask.Pix[y*e.mask.Stride+x] = 255
				}
			}
		}
	}
	if l.Lights {
		x, y := w/20+rng.IntN(w/3), h/8+rng.IntN(h/5)
		e.window = image.Rect(x, y, x+w/14, y+h/9)
	}
	return e
}

func (e *extras) draw(frame *image.RGBA, i, n int) {
	if e == nil {
		return
	}
	w, h := e.w, e.h
	if e.canopy != nil {
		// One full sway per clip: the canopy is where it started when the clip ends.
		sway := int(float64(w) / 90 * math.Sin(2*math.Pi*float64(i)/float64(n)))
		tx := w * 4 / 5
		fill(frame, image.Rect(tx+w/14-w/80, h/3, tx+w/14+w/80, h*3/4), color.RGBA{80, 60, 40, 255})
		r := e.canopy.Bounds().Add(image.Pt(tx+sway, h/12))
		draw.DrawMask(frame, r, e.canopy, image.Point{}, e.mask, image.Point{}, draw.Over)
	}
	if !e.window.Empty() {
		c := color.RGBA{40, 45, 55, 255}
		if i >= n/2 {
			c = color.RGBA{250, 235, 170, 255}
		}
		fill(frame, e.window, c)
	}
	if e.look.Rain {
		rng := rand.New(rand.NewPCG(e.seed, uint64(i)))
		for k := 0; k < w*h/2500; k++ {
			x, y := rng.IntN(w), rng.IntN(h)
			for d := 0; d < h/40; d++ { // a faint slanted streak
				px, py := x+d/3, y+d
				if px >= w || py >= h {
					break
				}
				o := frame.PixOffset(px, py)
				for c := 0; c < 3; c++ {
					frame.Pix[o+c] = uint8(min(255, int(frame.Pix[o+c])+24))
				}
			}
		}
	}
}
