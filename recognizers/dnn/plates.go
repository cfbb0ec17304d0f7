package dnn

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"sort"
	"strings"
	"unicode"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

// Plate is one plate found and read in a picture.
type Plate struct {
	Box     recognizers.Box      `json:"box"`
	Corners [4]recognizers.Point `json:"corners"` // top-left, top-right, bottom-right, bottom-left
	Score   float32              `json:"score"`   // detection
	Double  bool                 `json:"double_row,omitempty"`
	Text    string               `json:"text"`
	Chars   []CharConf           `json:"chars"`
	Color   string               `json:"color"` // blue, green, yellow
	// ColorScore is the classifier's probability of Color.
	ColorScore float32 `json:"color_score"`
	// Valid says the text is a well-formed Chinese plate for its colour (plate.Valid).
	Valid bool `json:"valid"`
}

// CharConf is one read character with the recogniser's confidence (the event's own type).
type CharConf = event.CharConf

// Plates finds plates with HyperLPR3's y5fu detector, rectifies them by their four corners,
// classifies their colour and reads them with PP-OCRv4.
type Plates struct {
	det, cls, rec *imageNet
	nets          int // loaded, for Close
	keys          []string
	grammar       grammars
	// Closer looks again at 1.5 times the scale when a picture shows no plate (Find): up to four
	// more detections on such pictures, for plates too small for the first look.
	Closer bool
	// Conf is the minimum detection confidence. Default 0.5.
	Conf float32
}

const (
	detSize = 320
	recW    = 320
	recH    = 48
	chipW   = 168 // rectified plate, as HyperLPR and the selftest
)

// NewPlates loads the plate models named in the manifest from dir (on the Auto runtime).
func NewPlates(dir string) (*Plates, error) { return NewPlatesOn(Auto, dir) }

// NewPlatesOn is NewPlates on the given runtime.
func NewPlatesOn(rt Runtime, dir string) (*Plates, error) {
	m, err := models.Load()
	if err != nil {
		return nil, err
	}
	p := &Plates{Conf: 0.5}
	for i, name := range []string{"plate-detector", "plate-colour", "plate-reader"} {
		path, _ := m.Path(dir, name)
		net, err := loadImageNet(path, rt)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("dnn: loading %s: %w", name, err)
		}
		*[]**imageNet{&p.det, &p.cls, &p.rec}[i] = net
		p.nets++
	}
	keysPath, _ := m.Path(dir, "plate-reader-keys")
	f, err := os.Open(keysPath)
	if err != nil {
		p.Close()
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p.keys = append(p.keys, sc.Text())
	}
	p.keys = append(p.keys, " ")
	if len(p.keys) < 6000 {
		p.Close()
		return nil, fmt.Errorf("dnn: %s has %d keys", keysPath, len(p.keys))
	}
	p.grammar = newGrammars(p.keys)
	return p, nil
}

// Close frees the networks.
func (p *Plates) Close() {
	for i, n := range []*imageNet{p.det, p.cls, p.rec} {
		if i < p.nets {
			n.Close()
		}
	}
	p.nets = 0
}

// Read finds and reads every plate in a BGR picture, best first.
func (p *Plates) Read(img gocv.Mat) ([]Plate, error) {
	if err := checkBGR(img); err != nil {
		return nil, err
	}
	found, err := p.Find(img)
	if err != nil {
		return nil, err
	}
	for i := range found {
		if err := p.read(img, &found[i]); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// ReadAt reads a plate found on another picture of the same moment (a sub-stream) whose box and
// corners were mapped into img's pixels.
func (p *Plates) ReadAt(img gocv.Mat, pl *Plate) error {
	if err := checkBGR(img); err != nil {
		return err
	}
	return p.read(img, pl)
}

// Detect finds plates and their corners (text not read).
func (p *Plates) Detect(img gocv.Mat) ([]Plate, error) {
	h, w := img.Rows(), img.Cols()
	r := math.Min(float64(detSize)/float64(h), float64(detSize)/float64(w))
	nh, nw := int(float64(h)*r), int(float64(w)*r)
	top, left := (detSize-nh)/2, (detSize-nw)/2
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Pt(max(1, nw), max(1, nh)), 0, 0, gocv.InterpolationLinear)
	lb := gocv.NewMat()
	defer lb.Close()
	gocv.CopyMakeBorder(small, &lb, top, detSize-small.Rows()-top, left, detSize-small.Cols()-left, gocv.BorderConstant, colorBlack)
	blob := gocv.BlobFromImage(lb, 1/255.0, image.Pt(detSize, detSize), gocv.NewScalar(0, 0, 0, 0), true, false)
	defer blob.Close()
	v, err := p.det.run(blob)
	if err != nil {
		return nil, err
	}
	if len(v)%15 != 0 {
		return nil, errors.New("dnn: plate detector output is not rows of 15")
	}
	var cands []Plate
	for i := 0; i+15 <= len(v); i += 15 {
		row := v[i : i+15]
		if row[4] <= p.Conf {
			continue
		}
		score := max(row[13], row[14]) * row[4]
		c := Plate{Score: score, Double: row[14] > row[13]}
		for k := 0; k < 4; k++ {
			c.Corners[k] = recognizers.Point{X: (row[5+2*k] - float32(left)) / float32(r), Y: (row[6+2*k] - float32(top)) / float32(r)}
		}
		bx, by := (row[0]-row[2]/2-float32(left))/float32(r), (row[1]-row[3]/2-float32(top))/float32(r)
		c.Box = recognizers.Box{X: bx, Y: by, W: row[2] / float32(r), H: row[3] / float32(r)}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return cropFallback(w, h), nil
	}
	out2 := nms(cands, 0.5)
	sort.Slice(out2, func(i, j int) bool { return out2[i].Score > out2[j].Score })
	return out2, nil
}

// Find detects plates and, with Closer, looks again at 1.5 times the scale when there is none.
func (p *Plates) Find(img gocv.Mat) ([]Plate, error) {
	found, err := p.Detect(img)
	if err != nil || !p.Closer || len(found) > 0 && found[0].Score > 0 {
		return found, err
	}
	more, err := p.detectCloser(img) // nothing, or only the crop fallback
	if err != nil || len(more) == 0 {
		return found, err
	}
	return more, nil
}

// detectCloser looks again at 1.5 times the scale when the whole picture showed no plate: the
// detector sees the picture letterboxed to 320 px, where a distant plate on a large frame is a
// few pixels high. The picture is cut into four overlapping quarters (each two thirds of the
// width and height), each detected on its own; the plates found are mapped back and merged.
func (p *Plates) detectCloser(img gocv.Mat) ([]Plate, error) {
	w, h := img.Cols(), img.Rows()
	if w < 2*detSize && h < 2*detSize {
		return nil, nil
	}
	tw, th := w*2/3, h*2/3
	var all []Plate
	for _, o := range []image.Point{{0, 0}, {w - tw, 0}, {0, h - th}, {w - tw, h - th}} {
		tile := img.Region(image.Rect(o.X, o.Y, o.X+tw, o.Y+th))
		found, err := p.Detect(tile)
		tile.Close()
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			if f.Score == 0 {
				continue // a quarter is never a plate crop
			}
			f.Box.X += float32(o.X)
			f.Box.Y += float32(o.Y)
			for k := range f.Corners {
				f.Corners[k].X += float32(o.X)
				f.Corners[k].Y += float32(o.Y)
			}
			all = append(all, f)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	kept := nms(all, 0.3)
	return kept, nil
}

// cropFallback treats a picture shaped like a plate (aspect 2–6, at most 600 px wide) that the
// detector finds nothing in as a plate crop: the detector needs surroundings, but users and door
// readers send tight crops too.
func cropFallback(w, h int) []Plate {
	aspect := float64(w) / float64(h)
	if aspect < 2 || aspect > 6 || w > 600 {
		return nil
	}
	W, H := float32(w-1), float32(h-1)
	return []Plate{{
		Box:     recognizers.Box{W: float32(w), H: float32(h)},
		Corners: [4]recognizers.Point{{X: 0, Y: 0}, {X: W, Y: 0}, {X: W, Y: H}, {X: 0, Y: H}},
		Score:   0, // not detected: read as a crop
	}}
}

// nms keeps the best-scoring plates, dropping any that overlap a kept one by more than iou.
func nms(cands []Plate, iou float32) []Plate {
	sort.Slice(cands, func(i, j int) bool { return cands[i].Score > cands[j].Score })
	var kept []Plate
	for _, c := range cands {
		ok := true
		for _, k := range kept {
			if c.Box.Overlap(k.Box) > iou {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, c)
		}
	}
	return kept
}

// read rectifies the plate, classifies its colour and reads its text.
func (p *Plates) read(img gocv.Mat, pl *Plate) error {
	quad := pl.Corners
	if pl.Score > 0 { // the detector's corners; a crop read whole is kept whole
		quad = padCorners(quad, chipPadX, chipPadY)
	}
	chip := rectify(img, quad)
	defer chip.Close()
	var err error
	if pl.Color, pl.ColorScore, err = p.colour(chip); err != nil {
		return err
	}
	// The background's hue, where it is clear, is surer than the colour classifier, which
	// hesitates between all three on warped plates.
	if c, share := hueColour(chip); share >= 0.6 {
		pl.Color, pl.ColorScore = c, share
	}
	if pl.Double {
		err = p.readDouble(chip, pl)
	} else {
		pl.Text, pl.Chars, err = p.ocr(chip, p.grammar.single...)
	}
	if err != nil {
		return err
	}
	pl.Text = plate.Normalize(pl.Text)
	// Eight characters on a plate the colour classifier is sure is blue or yellow (seven
	// characters by the standard) is one too many: the frame's edge read as a 1, say. Read again
	// as seven.
	// Likewise seven on a plate it is sure is green (eight): a character was dropped.
	if n := len([]rune(pl.Text)); !pl.Double && pl.ColorScore >= 0.9 && (n == 8 && pl.Color != "green" || n == 7 && pl.Color == "green") {
		want, gs := 7, []plateGrammar{p.grammar.seven}
		if pl.Color == "green" {
			want, gs = 8, p.grammar.green
		}
		if text, chars, err := p.ocr(chip, gs...); err == nil && len([]rune(plate.Normalize(text))) == want {
			pl.Text, pl.Chars = plate.Normalize(text), chars
		}
	}
	// Eight characters is a new-energy plate, green by the standard (GA 36-2018). The colour
	// classifier confuses flat light green with yellow; the text settles it.
	if len([]rune(pl.Text)) == 8 && plate.Valid(pl.Text, "green") {
		pl.Color = "green"
	}
	pl.Valid = plate.Valid(pl.Text, pl.Color)
	return nil
}

// rectify warps a plate's quadrilateral to a chipW × recH chip.
func rectify(img gocv.Mat, quad [4]recognizers.Point) gocv.Mat {
	src := gocv.NewPointVectorFromPoints(corners(quad))
	defer src.Close()
	dst := gocv.NewPointVectorFromPoints([]image.Point{{0, 0}, {chipW, 0}, {chipW, recH}, {0, recH}})
	defer dst.Close()
	m := gocv.GetPerspectiveTransform(src, dst)
	defer m.Close()
	chip := gocv.NewMat()
	gocv.WarpPerspective(img, &chip, m, image.Pt(chipW, recH))
	return chip
}

// readDouble reads a double-row plate: the top row (province and letter) and the bottom row
// separately, then joins them.
func (p *Plates) readDouble(chip gocv.Mat, pl *Plate) error {
	topR := chip.Region(image.Rect(0, 0, chipW, recH*5/12))
	defer topR.Close()
	botR := chip.Region(image.Rect(0, recH/3, chipW, recH))
	defer botR.Close()
	top, tc, err := p.ocr(topR, p.grammar.top)
	if err != nil {
		return err
	}
	bot, bc, err := p.ocr(botR, p.grammar.bottom)
	if err != nil {
		return err
	}
	pl.Text, pl.Chars = top+bot, append(tc, bc...)
	return nil
}

// The rectified chip moves the detector's corners by these fractions of the plate's width and
// height on each side (negative: inwards). Cutting the frame's top and bottom edge off reads
// better: on warped plates the reader took the frame's edge for strokes (tuned on warps of other
// seeds than TestPlateWarps's).
const (
	chipPadX = 0
	chipPadY = -0.15
)

// padCorners moves a plate's corners outwards along its own edges.
func padCorners(c [4]recognizers.Point, fx, fy float32) [4]recognizers.Point {
	tl, tr, br, bl := c[0], c[1], c[2], c[3]
	mv := func(p, along, across recognizers.Point, a, b float32) recognizers.Point {
		return recognizers.Point{X: p.X + a*along.X + b*across.X, Y: p.Y + a*along.Y + b*across.Y}
	}
	sub := func(a, b recognizers.Point) recognizers.Point { return recognizers.Point{X: a.X - b.X, Y: a.Y - b.Y} }
	top, bottom := sub(tr, tl), sub(br, bl) // left to right
	left, right := sub(bl, tl), sub(br, tr) // top to bottom
	return [4]recognizers.Point{
		mv(tl, top, left, -fx, -fy),
		mv(tr, top, right, fx, -fy),
		mv(br, bottom, right, fx, fy),
		mv(bl, bottom, left, -fx, fy),
	}
}

func corners(c [4]recognizers.Point) []image.Point {
	out := make([]image.Point, 4)
	for i, p := range c {
		out[i] = image.Pt(int(math.Round(float64(p.X))), int(math.Round(float64(p.Y))))
	}
	return out
}

var plateColours = []string{"blue", "green", "yellow"}

// hueColour is the plate colour the chip's saturated pixels show most (OpenCV hue, 0–180:
// yellow 15–35, green 35–90, blue 90–135) and the share of them that show it.
func hueColour(chip gocv.Mat) (string, float32) {
	hsv := gocv.NewMat()
	defer hsv.Close()
	gocv.CvtColor(chip, &hsv, gocv.ColorBGRToHSV)
	b, err := hsv.DataPtrUint8()
	if err != nil {
		return "", 0
	}
	var n [3]int
	total := 0
	for i := 0; i+2 < len(b); i += 3 {
		h, sat, v := b[i], b[i+1], b[i+2]
		if sat < 80 || v < 60 {
			continue
		}
		total++
		switch {
		case h >= 15 && h < 35:
			n[2]++
		case h >= 35 && h < 90:
			n[1]++
		case h >= 90 && h < 135:
			n[0]++
		}
	}
	if total < 50 {
		return "", 0
	}
	best := 0
	for i := range n {
		if n[i] > n[best] {
			best = i
		}
	}
	return plateColours[best], float32(n[best]) / float32(total)
}

func (p *Plates) colour(chip gocv.Mat) (string, float32, error) {
	blob := gocv.BlobFromImage(chip, 1/255.0, image.Pt(96, 96), gocv.NewScalar(0, 0, 0, 0), false, false)
	defer blob.Close()
	v, err := p.cls.run(blob)
	if err != nil || len(v) < 3 {
		return "", 0, fmt.Errorf("dnn: plate colour output: %v", err)
	}
	sm := softmax(v[:3])
	best := 0
	for i := range sm {
		if sm[i] > sm[best] {
			best = i
		}
	}
	return plateColours[best], float32(sm[best]), nil
}

// ocr reads one text line: resize to height 48, normalise to [-1, 1], right-pad to 320 with 0,
// then greedy CTC over the 40 time steps; a read that does not fit the line's grammar g is
// decoded again under it (decodeGrammar).
func (p *Plates) ocr(line gocv.Mat, gs ...plateGrammar) (string, []CharConf, error) {
	nw := min(recW, int(math.Ceil(float64(recH)*float64(line.Cols())/float64(line.Rows()))))
	rs := gocv.NewMat()
	defer rs.Close()
	gocv.Resize(line, &rs, image.Pt(nw, recH), 0, 0, gocv.InterpolationLinear)
	f := gocv.NewMat()
	defer f.Close()
	rs.ConvertToWithParams(&f, gocv.MatTypeCV32FC3, 1/127.5, -1)
	canvas := gocv.NewMatWithSize(recH, recW, gocv.MatTypeCV32FC3)
	defer canvas.Close()
	canvas.SetTo(gocv.NewScalar(0, 0, 0, 0))
	roi := canvas.Region(image.Rect(0, 0, nw, recH))
	f.CopyTo(&roi)
	roi.Close()
	blob := gocv.BlobFromImage(canvas, 1, image.Pt(recW, recH), gocv.NewScalar(0, 0, 0, 0), false, false)
	defer blob.Close()
	v, err := p.rec.run(blob)
	if err != nil {
		return "", nil, err
	}
	classes := len(p.keys) + 1
	if len(v)%classes != 0 {
		return "", nil, fmt.Errorf("dnn: recogniser output %d is not a multiple of %d classes", len(v), classes)
	}
	var sb strings.Builder
	var chars []CharConf
	prev := 0
	for t := 0; t < len(v)/classes; t++ {
		row := v[t*classes : (t+1)*classes]
		best := 0
		for i := 1; i < classes; i++ {
			if row[i] > row[best] {
				best = i
			}
		}
		if best != 0 && best != prev {
			ch := p.keys[best-1]
			sb.WriteString(ch)
			chars = append(chars, CharConf{Char: ch, Conf: row[best]})
		} else if best != 0 && best == prev && len(chars) > 0 && row[best] > chars[len(chars)-1].Conf {
			chars[len(chars)-1].Conf = row[best]
		}
		prev = best
	}
	// Keep letters, digits and CJK characters only, as the plate text; drop the confidences of
	// what is dropped.
	var kept []CharConf
	for _, c := range chars {
		r := []rune(c.Char)
		if len(r) == 1 && (unicode.IsLetter(r[0]) || unicode.IsDigit(r[0])) {
			kept = append(kept, CharConf{Char: strings.ToUpper(c.Char), Conf: c.Conf})
		}
	}
	for _, g := range gs {
		if g.fits(plate.Normalize(sb.String())) {
			return sb.String(), kept, nil
		}
	}
	if text, cs, ok := decodeBest(v, classes, gs, p.keys); ok {
		return text, cs, nil
	}
	return sb.String(), kept, nil
}
