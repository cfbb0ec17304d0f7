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
	det, cls, rec gocv.Net
	nets          int // loaded, for Close
	keys          []string
	// Conf is the minimum detection confidence. Default 0.5.
	Conf float32
}

const (
	detSize = 320
	recW    = 320
	recH    = 48
	chipW   = 168 // rectified plate, as HyperLPR and the selftest
)

// NewPlates loads the plate models named in the manifest from dir.
func NewPlates(dir string) (*Plates, error) {
	m, err := models.Load()
	if err != nil {
		return nil, err
	}
	p := &Plates{Conf: 0.5}
	for i, name := range []string{"plate-detector", "plate-colour", "plate-reader"} {
		path, _ := m.Path(dir, name)
		net := gocv.ReadNet(path, "")
		if net.Empty() {
			p.Close()
			return nil, fmt.Errorf("dnn: loading %s (%s) failed", name, path)
		}
		*[]*gocv.Net{&p.det, &p.cls, &p.rec}[i] = net
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
	return p, nil
}

// Close frees the networks.
func (p *Plates) Close() {
	for i, n := range []*gocv.Net{&p.det, &p.cls, &p.rec} {
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
	found, err := p.Detect(img)
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
	p.det.SetInput(blob, "")
	out := p.det.Forward("")
	defer out.Close()
	v, err := out.DataPtrFloat32()
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
			if overlap(c.Box, k.Box) > iou {
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

func overlap(a, b recognizers.Box) float32 {
	x1, y1 := max(a.X, b.X), max(a.Y, b.Y)
	x2, y2 := min(a.X+a.W, b.X+b.W), min(a.Y+a.H, b.Y+b.H)
	if x2 <= x1 || y2 <= y1 {
		return 0
	}
	inter := (x2 - x1) * (y2 - y1)
	return inter / (a.W*a.H + b.W*b.H - inter)
}

// read rectifies the plate, classifies its colour and reads its text.
func (p *Plates) read(img gocv.Mat, pl *Plate) error {
	src := gocv.NewPointVectorFromPoints(corners(pl.Corners))
	defer src.Close()
	dst := gocv.NewPointVectorFromPoints([]image.Point{{0, 0}, {chipW, 0}, {chipW, recH}, {0, recH}})
	defer dst.Close()
	m := gocv.GetPerspectiveTransform(src, dst)
	defer m.Close()
	chip := gocv.NewMat()
	defer chip.Close()
	gocv.WarpPerspective(img, &chip, m, image.Pt(chipW, recH))
	var err error
	if pl.Color, pl.ColorScore, err = p.colour(chip); err != nil {
		return err
	}
	if pl.Double {
		err = p.readDouble(chip, pl)
	} else {
		pl.Text, pl.Chars, err = p.ocr(chip)
	}
	if err != nil {
		return err
	}
	pl.Text = plate.Normalize(pl.Text)
	// Eight characters is a new-energy plate, green by the standard (GA 36-2018). The colour
	// classifier confuses flat light green with yellow; the text settles it.
	if len([]rune(pl.Text)) == 8 && plate.Valid(pl.Text, "green") {
		pl.Color = "green"
	}
	pl.Valid = plate.Valid(pl.Text, pl.Color)
	return nil
}

// readDouble reads a double-row plate: the top row (province and letter) and the bottom row
// separately, then joins them.
func (p *Plates) readDouble(chip gocv.Mat, pl *Plate) error {
	topR := chip.Region(image.Rect(0, 0, chipW, recH*5/12))
	defer topR.Close()
	botR := chip.Region(image.Rect(0, recH/3, chipW, recH))
	defer botR.Close()
	top, tc, err := p.ocr(topR)
	if err != nil {
		return err
	}
	bot, bc, err := p.ocr(botR)
	if err != nil {
		return err
	}
	pl.Text, pl.Chars = top+bot, append(tc, bc...)
	return nil
}

func corners(c [4]recognizers.Point) []image.Point {
	out := make([]image.Point, 4)
	for i, p := range c {
		out[i] = image.Pt(int(math.Round(float64(p.X))), int(math.Round(float64(p.Y))))
	}
	return out
}

var plateColours = []string{"blue", "green", "yellow"}

func (p *Plates) colour(chip gocv.Mat) (string, float32, error) {
	blob := gocv.BlobFromImage(chip, 1/255.0, image.Pt(96, 96), gocv.NewScalar(0, 0, 0, 0), false, false)
	defer blob.Close()
	p.cls.SetInput(blob, "")
	out := p.cls.Forward("")
	defer out.Close()
	v, err := out.DataPtrFloat32()
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
// then greedy CTC over the 40 time steps.
func (p *Plates) ocr(line gocv.Mat) (string, []CharConf, error) {
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
	p.rec.SetInput(blob, "")
	out := p.rec.Forward("")
	defer out.Close()
	v, err := out.DataPtrFloat32()
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
	return sb.String(), kept, nil
}
