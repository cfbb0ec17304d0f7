package main

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/vigil-oss/vigil/internal/testkit/faceeval"
)

// plot draws, per model (column) and group (row), the histograms of mate (green) and non-mate
// (red) distances, each scaled to its own peak, with the model's door threshold in blue.
func plot(path string, rs []result) error {
	const w, h, pad = 330, 200, 30
	var cols []result
	for _, r := range rs {
		if r.space != nil {
			cols = append(cols, r)
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, len(cols)*w, 2*h+20))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	label := func(x, y int, s string) {
		d := font.Drawer{Dst: img, Src: image.Black, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	for c, r := range cols {
		for g, p := range []faceeval.Pairs{r.ea, r.rest} {
			x0, y0 := c*w+pad, g*h+pad
			pw, ph := w-2*pad, h-2*pad
			name := []string{"East Asian", "rest"}[g]
			label(x0, y0-10, r.name+": "+name)
			lo, hi := 0.0, 1.6
			if !r.space.Cosine {
				hi = 1.2
			}
			bins := 60
			hist := func(xs []float64) []float64 {
				out := make([]float64, bins)
				for _, x := range xs {
					i := int((x - lo) / (hi - lo) * float64(bins))
					if i >= 0 && i < bins {
						out[i]++
					}
				}
				peak := 0.0
				for _, v := range out {
					peak = max(peak, v)
				}
				for i := range out {
					out[i] /= max(peak, 1)
				}
				return out
			}
			for _, s := range []struct {
				h   []float64
				col color.RGBA
			}{{hist(p.NonMate), color.RGBA{220, 60, 60, 255}}, {hist(p.Mate), color.RGBA{40, 160, 60, 255}}} {
				for i, v := range s.h {
					bx := x0 + i*pw/bins
					top := y0 + ph - int(v*float64(ph))
					for x := bx; x < bx+pw/bins; x++ {
						for y := top; y < y0+ph; y++ {
							old := img.RGBAAt(x, y)
							if old == (color.RGBA{255, 255, 255, 255}) {
								img.SetRGBA(x, y, s.col)
							} else {
								img.SetRGBA(x, y, color.RGBA{120, 110, 60, 255}) // overlap
							}
						}
					}
				}
			}
			for x := x0; x < x0+pw; x++ {
				img.Set(x, y0+ph, color.Black)
			}
			tx := x0 + int((float64(r.space.Door)-lo)/(hi-lo)*float64(pw))
			for y := y0; y < y0+ph; y++ {
				img.Set(tx, y, color.RGBA{30, 60, 220, 255})
			}
			label(x0, y0+ph+13, "0")
			label(x0+pw-20, y0+ph+13, trim(hi))
			label(tx-10, y0+ph+13, trim(float64(r.space.Door)))
		}
	}
	label(pad, 2*h+12, "green: same person; red: different people; blue: door threshold (Euclidean distance)")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func trim(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
