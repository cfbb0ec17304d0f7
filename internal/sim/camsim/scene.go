// Package camsim is the simulated camera fleet: it renders scripted street and gate scenes
// (people from a photo set walking past at realistic face sizes, cars carrying plates), encodes
// each clip once with libx264 through the ffmpeg CLI, and replays it on many RTSP paths with fresh
// timestamps, writing a ground-truth line for every passage.
package camsim

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // test photos
	_ "image/png"  // synthetic plates
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	xdraw "golang.org/x/image/draw"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
)

// Event is one scripted passage in a clip.
type Event struct {
	Kind     string  `json:"kind" yaml:"kind"`                           // "face" or "plate"
	Identity string  `json:"identity,omitempty" yaml:"identity"`         // faces: folder name under faces/
	Photo    string  `json:"photo,omitempty" yaml:"photo"`               // faces: file, relative to testdata
	Plate    string  `json:"plate,omitempty" yaml:"plate"`               // plates: text, from labels.csv
	Image    string  `json:"image,omitempty" yaml:"image"`               // plates: file, relative to testdata
	Start    float64 `json:"start" yaml:"start"`                         // seconds from clip start when it appears
	Duration float64 `json:"duration" yaml:"duration"`                   // seconds on screen
	Size     int     `json:"size" yaml:"size"`                           // face height or plate width in pixels
	Y        float64 `json:"y,omitempty" yaml:"y"`                       // vertical position of the face/plate centre, 0..1
	Reverse  bool    `json:"reverse,omitempty" yaml:"reverse,omitempty"` // walks right to left
	// Enter and Leave are the clip times (s) when the face or plate is wholly inside the frame.
	Enter float64 `json:"enter" yaml:"-"`
	Leave float64 `json:"leave" yaml:"-"`
}

// Library is the test photo set: faces by identity and synthetic plates with their text.
type Library struct {
	Dir   string
	Faces map[string][]string // identity → photo paths relative to Dir
	// Walking are the photos drawn as walking people with --activity site: those close to
	// square, where the face is the middle third as faceSprite assumes (a photo whose crop was
	// cut by its source's edge has its face elsewhere, and would walk past headless).
	Walking map[string][]string
	Plates  []Plate
}

// Plate is one synthetic plate image and its text.
type Plate struct {
	Image string // relative to Dir
	Text  string
}

// LoadLibrary reads testdata's labels.csv.
func LoadLibrary(dir string) (*Library, error) {
	rows, err := testdata.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("camsim: test data: %w (point --testdata at the shared testdata folder)", err)
	}
	lib := &Library{Dir: dir, Faces: map[string][]string{}, Walking: map[string][]string{}}
	for _, r := range rows {
		switch {
		case r.Kind == "face" && r.Identity != "":
			lib.Faces[r.Identity] = append(lib.Faces[r.Identity], r.File)
			if squareish(filepath.Join(dir, r.File)) && !unwalkable[r.File] {
				lib.Walking[r.Identity] = append(lib.Walking[r.Identity], r.File)
			}
		case r.Kind == "plate_synth" && strings.Contains(r.File, "/plate_"):
			lib.Plates = append(lib.Plates, Plate{Image: r.File, Text: r.Text()})
		}
	}
	if len(lib.Faces) == 0 || len(lib.Plates) == 0 {
		return nil, fmt.Errorf("camsim: %s has %d identities and %d plates; need both", dir, len(lib.Faces), len(lib.Plates))
	}
	return lib, nil
}

// unwalkable photos are square but, drawn as a passer-by, not found as faces at every size the
// load model walks (TestWalkingPhotosAreFaces: down to 20 px on a 640-wide picture, a 40 px
// face at 720p): the site's ground truth would count passages no camera sees. vigil misses these
// faces at that distance in every configuration; the bench measures capacity, not this limit.
var unwalkable = map[string]bool{"faces/jeff_bezos/1.jpg": true, "faces/meiqi_wjsn/1.jpg": true}

// squareish reports whether the picture at path is within 15% of square.
func squareish(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	c, _, err := image.DecodeConfig(f)
	if err != nil || c.Width == 0 || c.Height == 0 {
		return false
	}
	r := float64(c.Width) / float64(c.Height)
	return r > 0.87 && r < 1.15
}

// Identities returns identity names in a stable order.
func (l *Library) Identities() []string {
	out := make([]string, 0, len(l.Faces))
	for k := range l.Faces {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Script generates a clip's events from a seed: people passing at 40–200 px faces, cars with
// plates, and empty periods, laid end to end until the clip is full.
func (l *Library) Script(seed uint64, seconds float64) []Event {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ids := l.Identities()
	var evs []Event
	t := 0.5 + rng.Float64()
	for {
		var e Event
		switch p := rng.Float64(); {
		case p < 0.2: // empty street
			t += 1.5 + 2*rng.Float64()
			continue
		case p < 0.4:
			pl := l.Plates[rng.IntN(len(l.Plates))]
			e = Event{Kind: "plate", Plate: pl.Text, Image: pl.Image, Size: 80 + rng.IntN(121), Y: 0.62 + 0.1*rng.Float64()}
			e.Duration = 3 + 1.5*rng.Float64()
		default:
			id := ids[rng.IntN(len(ids))]
			ph := l.Faces[id]
			e = Event{Kind: "face", Identity: id, Photo: ph[rng.IntN(len(ph))], Size: 40 + rng.IntN(161), Y: 0.3 + 0.2*rng.Float64()}
			e.Duration = 3 + 2*rng.Float64()
		}
		e.Reverse = rng.IntN(2) == 1
		e.Start = t
		if t+e.Duration > seconds-0.2 {
			break
		}
		evs = append(evs, e)
		t += e.Duration + 0.3 + rng.Float64()
	}
	return evs
}

// sprite is an event's picture, scaled once, with the box of the face or plate inside it.
type sprite struct {
	img   *image.RGBA
	mask  *image.Alpha // nil: opaque
	inner image.Rectangle
}

func (l *Library) loadImage(rel string) (image.Image, error) {
	f, err := os.Open(filepath.Join(l.Dir, rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return img, nil
}

// faceSprite cuts the photo's central region with an oval mask. The photos are square crops of
// three times the face box, so the face is the middle third; scale so the face is size px tall.
func (l *Library) faceSprite(e Event) (*sprite, error) {
	src, err := l.loadImage(e.Photo)
	if err != nil {
		return nil, err
	}
	b := src.Bounds()
	face := b.Dx() / 3
	// Keep 1.7× the face box around its centre: head, hair and a little neck.
	keep := face * 17 / 10
	cx, cy := b.Min.X+b.Dx()/2, b.Min.Y+b.Dy()/2
	crop := image.Rect(cx-keep/2, cy-keep/2, cx+keep/2, cy+keep/2+keep/5).Intersect(b)
	scale := float64(e.Size) / float64(face)
	hw, hh := int(float64(crop.Dx())*scale), int(float64(crop.Dy())*scale)
	head := image.NewRGBA(image.Rect(0, 0, hw, hh))
	xdraw.ApproxBiLinear.Scale(head, head.Bounds(), src, crop, xdraw.Src, nil)
	// The person: the head oval over a torso (shoulders 2.2 face widths, 2 faces tall), so a
	// passer-by is a moving figure, not a floating photo.
	fs := e.Size
	w, h := max(hw, fs*22/10), hh+fs*2
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	mask := image.NewAlpha(dst.Bounds())
	hx := (w - hw) / 2
	shirt := shirtColour(e.Identity + e.Photo)
	top := hh - fs/5
	for y := top; y < h; y++ {
		half := fs * 11 / 10
		if y-top < fs/3 { // rounded shoulders
			half = fs/2 + (fs*6/10)*(y-top)/(fs/3)
		}
		for x := w/2 - half; x < w/2+half; x++ {
			dst.SetRGBA(x, y, shirt)
			mask.Pix[y*mask.Stride+x] = 255
		}
	}
	rx, ry := float64(hw)/2, float64(hh)/2
	for y := 0; y < hh; y++ {
		for x := 0; x < hw; x++ {
			dx, dy := (float64(x)-rx)/rx, (float64(y)-ry)/ry
			if d := dx*dx + dy*dy; d < 1 {
				a := 1.0
				if d > 0.85 { // soft edge
					a = (1 - d) / 0.15
				}
				i := head.PixOffset(x, y)
				o := dst.PixOffset(x+hx, y)
				for k := 0; k < 3; k++ {
					dst.Pix[o+k] = uint8(a*float64(head.Pix[i+k]) + (1-a)*float64(dst.Pix[o+k]))
				}
				dst.Pix[o+3] = 255
				if m := &mask.Pix[y*mask.Stride+x+hx]; uint8(a*255) > *m {
					*m = uint8(a * 255)
				}
			}
		}
	}
	ox, oy := hx+(hw-fs)/2, int(float64(cy-crop.Min.Y)*scale)-fs/2
	return &sprite{img: dst, mask: mask, inner: image.Rect(ox, oy, ox+fs, oy+fs)}, nil
}

// shirtColour picks a stable clothing colour per person.
func shirtColour(key string) color.RGBA {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return color.RGBA{uint8(40 + h%160), uint8(40 + (h>>8)%160), uint8(40 + (h>>16)%160), 255}
}

// plateSprite draws a car body carrying the plate, size px wide.
func (l *Library) plateSprite(e Event, rng *rand.Rand) (*sprite, error) {
	src, err := l.loadImage(e.Image)
	if err != nil {
		return nil, err
	}
	return carSprite(e.Size, src, rng), nil
}

// carSprite draws a car body carrying plate src scaled to pw px wide; without src the plate is
// a blank, unreadable one (a car passing a face camera: motion, nothing to read).
func carSprite(pw int, src image.Image, rng *rand.Rand) *sprite {
	ph := pw * 2 / 7
	if src != nil {
		ph = pw * src.Bounds().Dy() / src.Bounds().Dx()
	}
	cw, ch := pw*4, pw*2
	car := image.NewRGBA(image.Rect(0, 0, cw, ch))
	body := color.RGBA{uint8(40 + rng.IntN(180)), uint8(40 + rng.IntN(180)), uint8(40 + rng.IntN(180)), 255}
	draw.Draw(car, car.Bounds(), &image.Uniform{body}, image.Point{}, draw.Src)
	glass := image.Rect(cw/8, ch/10, cw*7/8, ch*2/5)
	draw.Draw(car, glass, &image.Uniform{color.RGBA{30, 40, 55, 255}}, image.Point{}, draw.Src)
	for _, x := range []int{cw / 16, cw*15/16 - cw/8} { // lamps
		draw.Draw(car, image.Rect(x, ch/2, x+cw/8, ch/2+ch/10), &image.Uniform{color.RGBA{230, 220, 180, 255}}, image.Point{}, draw.Src)
	}
	pr := image.Rect((cw-pw)/2, ch*3/4-ph/2, (cw-pw)/2+pw, ch*3/4-ph/2+ph)
	if src == nil {
		draw.Draw(car, pr, &image.Uniform{color.RGBA{200, 200, 190, 255}}, image.Point{}, draw.Src)
		return &sprite{img: car, inner: pr}
	}
	xdraw.CatmullRom.Scale(car, pr, src, src.Bounds(), xdraw.Src, nil)
	return &sprite{img: car, inner: pr}
}

// background renders a street: sky, wall with windows, pavement, with variety from the seed.
func background(w, h int, rng *rand.Rand) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	wall := color.RGBA{uint8(120 + rng.IntN(90)), uint8(110 + rng.IntN(80)), uint8(100 + rng.IntN(70)), 255}
	for y := 0; y < h; y++ {
		var c color.RGBA
		switch {
		case y < h/10:
			c = color.RGBA{150, 180, 215, 255}
		case y < h*7/10:
			c = wall
		default:
			g := uint8(70 + 40*(y-h*7/10)/(h*3/10))
			c = color.RGBA{g, g, g + 5, 255}
		}
		row := img.Pix[y*img.Stride : y*img.Stride+w*4]
		for x := 0; x < w; x++ {
			row[x*4], row[x*4+1], row[x*4+2], row[x*4+3] = c.R, c.G, c.B, 255
		}
	}
	for i := 0; i < 6+rng.IntN(6); i++ { // windows and doors
		x, y := rng.IntN(w), h/10+rng.IntN(h/2)
		r := image.Rect(x, y, x+w/20+rng.IntN(w/12), y+h/12+rng.IntN(h/8))
		shade := uint8(40 + rng.IntN(60))
		draw.Draw(img, r, &image.Uniform{color.RGBA{shade, shade + 10, shade + 20, 255}}, image.Point{}, draw.Src)
	}
	// Noise so the encoder has texture to spend bits on, as a real sensor would.
	for i := 0; i < w*h/40; i++ {
		p := rng.IntN(w*h) * 4
		for k := 0; k < 3; k++ {
			img.Pix[p+k] = uint8(int(img.Pix[p+k]) + rng.IntN(31) - 15)
		}
	}
	return img
}

// Resolve fills a scenario event's photo or plate image from its identity or plate text and
// checks its fields.
func (l *Library) Resolve(e *Event) error {
	switch e.Kind {
	case "face":
		if e.Photo == "" {
			ph := l.Faces[e.Identity]
			if len(ph) == 0 {
				return fmt.Errorf("identity %q is not in the test photo set", e.Identity)
			}
			e.Photo = ph[0]
		}
		if e.Size == 0 {
			e.Size = 100
		}
		if e.Y == 0 {
			e.Y = 0.4
		}
	case "plate":
		if e.Image == "" {
			for _, p := range l.Plates {
				if p.Text == e.Plate {
					e.Image = p.Image
				}
			}
			if e.Image == "" {
				return fmt.Errorf("plate %q has no synthetic image", e.Plate)
			}
		}
		if e.Size == 0 {
			e.Size = 140
		}
		if e.Y == 0 {
			e.Y = 0.7
		}
	case "car":
		if e.Size == 0 {
			e.Size = 60
		}
		if e.Y == 0 {
			e.Y = 0.75
		}
	default:
		return fmt.Errorf("kind %q is not face, plate or car", e.Kind)
	}
	if e.Duration <= 0 || e.Start < 0 {
		return fmt.Errorf("start %.2f and duration %.2f must be >= 0 and > 0", e.Start, e.Duration)
	}
	return nil
}
