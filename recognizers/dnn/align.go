package dnn

import (
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
)

var colorBlack = color.RGBA{0, 0, 0, 0}

// ChipSize is the side of dlib's face chip.
const ChipSize = 150

// dlibTemplate is where YuNet's five landmarks land on dlib's 150 px chip (padding 0.25): the
// ArcFace five-point template mapped onto dlib's chip by the eye centres, as in
// shared/models/tools/selftest.py (DLIB_T).
var dlibTemplate = func() [5][2]float64 {
	arc := [5][2]float64{{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041}}
	d5n := [5][2]float64{{0.8595674595992, 0.2134981538014}, {0.6460604764104, 0.2289674387677}, {0.1205750620789, 0.2137274526848},
		{0.3340850613712, 0.2290642403242}, {0.4901123135679, 0.6277975316475}}
	var d5 [5][2]float64
	for i := range d5n {
		for k := 0; k < 2; k++ {
			d5[i][k] = (0.25 + d5n[i][k]) / 1.5 * ChipSize
		}
	}
	mid := func(a, b [2]float64) [2]float64 { return [2]float64{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2} }
	dist := func(a, b [2]float64) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }
	eR, eL := mid(d5[2], d5[3]), mid(d5[0], d5[1])
	aR, aL := arc[0], arc[1]
	s := dist(eL, eR) / dist(aL, aR)
	ac, ec := mid(aR, aL), mid(eR, eL)
	var t [5][2]float64
	for i := range arc {
		for k := 0; k < 2; k++ {
			t[i][k] = (arc[i][k]-ac[k])*s + ec[k]
		}
	}
	return t
}()

// similarity returns the 2×3 least-squares similarity transform (rotation, uniform scale,
// translation) taking src onto dst.
func similarity(src [5]recognizers.Point, dst [5][2]float64) [2][3]float64 {
	var sx, sy, dx, dy float64
	for i := range src {
		sx += float64(src[i].X)
		sy += float64(src[i].Y)
		dx += dst[i][0]
		dy += dst[i][1]
	}
	n := float64(len(src))
	sx, sy, dx, dy = sx/n, sy/n, dx/n, dy/n
	var num1, num2, den float64
	for i := range src {
		x, y := float64(src[i].X)-sx, float64(src[i].Y)-sy
		u, v := dst[i][0]-dx, dst[i][1]-dy
		num1 += x*u + y*v
		num2 += x*v - y*u
		den += x*x + y*y
	}
	if den == 0 {
		den = 1
	}
	a, b := num1/den, num2/den
	return [2][3]float64{{a, -b, dx - (a*sx - b*sy)}, {b, a, dy - (b*sx + a*sy)}}
}

// warp maps the five landmarks onto template on a size×size chip. The caller closes the result.
func warp(img gocv.Mat, lm [5]recognizers.Point, template [5][2]float64, size int) gocv.Mat {
	m := similarity(lm, template)
	mat := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer mat.Close()
	for r := 0; r < 2; r++ {
		for c := 0; c < 3; c++ {
			mat.SetDoubleAt(r, c, m[r][c])
		}
	}
	chip := gocv.NewMat()
	gocv.WarpAffine(img, &chip, mat, image.Pt(size, size))
	return chip
}
