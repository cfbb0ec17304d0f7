package camsim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Params set how clips are rendered and encoded.
type Params struct {
	Width, Height int
	FPS           int
	GOP           float64 // seconds between key frames
	Bitrate       int     // kbit/s
	Seconds       float64 // clip length before it loops
	// Sub, when set, is a second stream of the same scene (a camera's sub-stream for analysis):
	// its own picture size, bit rate and key frame interval, frame for frame in step with the main.
	Sub *SubParams `json:",omitempty"`
	// Look is the place and its background motion; nil is today's plain street.
	Look *Look `json:",omitempty"`
}

// SubParams describe a sub-stream.
type SubParams struct {
	Width, Height int
	GOP           float64 // seconds between key frames; default 1 s (analysis samples key frames)
	Bitrate       int     // kbit/s; default 400
}

// DefaultParams are the defaults: 1280x720, 25 fps, 2 s GOP, 1.5 Mb/s, 24 s clips.
func DefaultParams() Params {
	return Params{Width: 1280, Height: 720, FPS: 25, GOP: 2, Bitrate: 1500, Seconds: 24}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	switch {
	case p.Width < 64 || p.Height < 64 || p.Width > 3840 || p.Height > 2160 || p.Width%2 != 0 || p.Height%2 != 0:
		return fmt.Errorf("camsim: resolution %dx%d must be even and between 64x64 and 3840x2160", p.Width, p.Height)
	case p.FPS < 1 || p.FPS > 60:
		return fmt.Errorf("camsim: fps %d outside 1..60", p.FPS)
	case p.GOP <= 0 || p.GOP > 10:
		return fmt.Errorf("camsim: gop %.1fs outside (0, 10]", p.GOP)
	case p.Bitrate < 50 || p.Bitrate > 50000:
		return fmt.Errorf("camsim: bitrate %d kbit/s outside 50..50000", p.Bitrate)
	case p.Seconds < p.GOP:
		return fmt.Errorf("camsim: clip of %.1fs is shorter than one GOP", p.Seconds)
	}
	if s := p.Sub; s != nil {
		switch {
		case s.Width < 64 || s.Height < 64 || s.Width > p.Width || s.Height > p.Height || s.Width%2 != 0 || s.Height%2 != 0:
			return fmt.Errorf("camsim: sub-stream %dx%d must be even, at least 64x64 and no larger than the main %dx%d", s.Width, s.Height, p.Width, p.Height)
		case s.GOP <= 0 || s.GOP > 10:
			return fmt.Errorf("camsim: sub-stream gop %.1fs outside (0, 10]", s.GOP)
		case s.Bitrate < 50 || s.Bitrate > p.Bitrate:
			return fmt.Errorf("camsim: sub-stream bitrate %d kbit/s outside 50..%d (the main's)", s.Bitrate, p.Bitrate)
		}
	}
	return nil
}

// ParseSub reads a --substream value, WxH, with the sub-stream's defaults (1 s GOP, 400 kbit/s);
// "" means none.
func ParseSub(v string) (*SubParams, error) {
	if v == "" {
		return nil, nil
	}
	var w, h int
	if n, err := fmt.Sscanf(v, "%dx%d", &w, &h); n != 2 || err != nil || fmt.Sprintf("%dx%d", w, h) != v {
		return nil, fmt.Errorf("camsim: sub-stream %q is not WIDTHxHEIGHT (e.g. 640x360)", v)
	}
	return &SubParams{Width: w, Height: h, GOP: 1, Bitrate: 400}, nil
}

// gopFrames is the key frame interval in frames.
func (p Params) gopFrames() int { return max(1, int(p.GOP*float64(p.FPS)+0.5)) }

// subGOPFrames is the sub-stream's key frame interval in frames.
func (p Params) subGOPFrames() int { return max(1, int(p.Sub.GOP*float64(p.FPS)+0.5)) }

// frames is the clip length rounded up to whole GOPs of both streams, so every loop starts on a
// key frame and the key frame cadence does not break at the seam.
func (p Params) frames() int {
	g := p.gopFrames()
	if p.Sub != nil {
		s := p.subGOPFrames()
		a, b := g, s
		for b != 0 {
			a, b = b, a%b
		}
		g = g / a * s
	}
	n := int(p.Seconds*float64(p.FPS) + 0.5)
	return (n + g - 1) / g * g
}

// Clip is an encoded scene ready to replay.
type Clip struct {
	Params Params
	SPS    []byte
	PPS    []byte
	Units  [][][]byte // one access unit per frame, NAL units without start codes or delimiters
	Events []Event
	// Sub is the sub-stream when Params.Sub is set: as many units as the main, frame for frame.
	Sub *Encoded
}

// Encoded is one encoded stream of a clip.
type Encoded struct {
	SPS, PPS []byte
	Units    [][][]byte
}

// Duration is the clip length in seconds.
func (c *Clip) Duration() float64 { return float64(len(c.Units)) / float64(c.Params.FPS) }

// clipVersion changes whenever rendering changes, so cached clips are rebuilt.
const clipVersion = "7"

// BuildClip renders and encodes a clip for events, or loads it from cacheDir when an identical
// one was built before. cacheDir may be empty to disable caching.
func BuildClip(ctx context.Context, lib *Library, p Params, events []Event, seed uint64, cacheDir string) (*Clip, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	key := cacheKey(p, events, seed)
	if cacheDir != "" {
		if c, err := loadCached(cacheDir, key, p); err == nil {
			return c, nil
		}
	}
	c, annexb, sub, err := render(ctx, lib, p, events, seed)
	if err != nil {
		return nil, err
	}
	if cacheDir != "" {
		_ = saveCached(cacheDir, key, annexb, sub, c.Events) // a cache that cannot be written only costs time
	}
	return c, nil
}

func cacheKey(p Params, events []Event, seed uint64) string {
	h := sha256.New()
	j, _ := json.Marshal(struct {
		V string
		P Params
		E []Event
		S uint64
	}{clipVersion, p, events, seed})
	h.Write(j)
	return hex.EncodeToString(h.Sum(nil))[:20]
}

func loadCached(dir, key string, p Params) (*Clip, error) {
	annexb, err := os.ReadFile(filepath.Join(dir, key+".h264"))
	if err != nil {
		return nil, err
	}
	ej, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil, err
	}
	var evs []Event
	if err := json.Unmarshal(ej, &evs); err != nil {
		return nil, err
	}
	c, err := parseAnnexB(annexb, p)
	if err != nil {
		return nil, err
	}
	c.Events = evs
	if p.Sub != nil {
		sb, err := os.ReadFile(filepath.Join(dir, key+".sub.h264"))
		if err != nil {
			return nil, err
		}
		if c.Sub, err = parseSub(sb, len(c.Units)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// parseSub parses a sub-stream and checks it is frame for frame in step with the main's n units.
func parseSub(annexb []byte, n int) (*Encoded, error) {
	sc, err := parseAnnexB(annexb, Params{})
	if err != nil {
		return nil, fmt.Errorf("sub-stream: %w", err)
	}
	if len(sc.Units) != n {
		return nil, fmt.Errorf("camsim: sub-stream has %d frames, the main %d", len(sc.Units), n)
	}
	return &Encoded{SPS: sc.SPS, PPS: sc.PPS, Units: sc.Units}, nil
}

func saveCached(dir, key string, annexb, sub []byte, evs []Event) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ej, _ := json.Marshal(evs)
	if err := os.WriteFile(filepath.Join(dir, key+".json"), ej, 0o644); err != nil {
		return err
	}
	if sub != nil {
		// Written before the main, whose presence says the entry is whole.
		if err := os.WriteFile(filepath.Join(dir, key+".sub.h264"), sub, 0o644); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, key+".h264.tmp")
	if err := os.WriteFile(tmp, annexb, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, key+".h264"))
}

// placed is an event with its sprite, ready to draw.
type placed struct {
	e  *Event
	sp *sprite
}

// x returns the sprite's left edge at clip time t.
func (pl placed) x(t float64, width int) int {
	sw := pl.sp.img.Bounds().Dx()
	f := (t - pl.e.Start) / pl.e.Duration
	if pl.e.Reverse {
		f = 1 - f
	}
	return -sw + int(f*float64(width+sw))
}

func render(ctx context.Context, lib *Library, p Params, events []Event, seed uint64) (*Clip, []byte, []byte, error) {
	rng := rand.New(rand.NewPCG(seed, 7))
	bg := backgroundFor(p.Look, p.Width, p.Height, rng)
	ex := newExtras(p.Look, p.Width, p.Height, rng)
	evs := make([]Event, len(events))
	copy(evs, events)
	var ps []placed
	for i := range evs {
		e := &evs[i]
		var sp *sprite
		var err error
		switch e.Kind {
		case "face":
			sp, err = lib.faceSprite(*e)
		case "plate":
			sp, err = lib.plateSprite(*e, rng)
		case "car":
			sp = carSprite(e.Size, nil, rng)
		default:
			err = fmt.Errorf("kind %q is not face, plate or car", e.Kind)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("camsim: event %d: %w", i, err)
		}
		// Wholly visible while inner box is inside [0, width): solve x(t)+inner.Min >= 0 and
		// x(t)+inner.Max <= width on the linear path.
		sw := float64(sp.img.Bounds().Dx())
		span := float64(p.Width) + sw
		a := (sw - float64(sp.inner.Min.X)) / span
		b := (sw + float64(p.Width) - float64(sp.inner.Max.X)) / span
		if e.Reverse {
			a, b = 1-b, 1-a
		}
		e.Enter, e.Leave = e.Start+a*e.Duration, e.Start+b*e.Duration
		ps = append(ps, placed{e: e, sp: sp})
	}

	// Cars are drawn first and people over them, so no car ever hides a face the ground truth
	// says is visible.
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].e.Kind != "face" && ps[j].e.Kind == "face" })
	n := p.frames()
	main, sub, err := encode(ctx, p, n, func(i int, frame *image.RGBA) {
		t := float64(i) / float64(p.FPS)
		copy(frame.Pix, bg.Pix)
		ex.draw(frame, i, n)
		for _, pl := range ps {
			if t < pl.e.Start || t >= pl.e.Start+pl.e.Duration {
				continue
			}
			x := pl.x(t, p.Width)
			y := int(pl.e.Y*float64(p.Height)) - (pl.sp.inner.Min.Y+pl.sp.inner.Max.Y)/2
			r := pl.sp.img.Bounds().Add(image.Pt(x, y))
			if pl.sp.mask != nil {
				draw.DrawMask(frame, r, pl.sp.img, image.Point{}, pl.sp.mask, image.Point{}, draw.Over)
			} else {
				draw.Draw(frame, r, pl.sp.img, image.Point{}, draw.Src)
			}
		}
	})
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := parseAnnexB(main, p)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(c.Units) != n {
		return nil, nil, nil, fmt.Errorf("camsim: ffmpeg produced %d frames, want %d", len(c.Units), n)
	}
	if sub != nil {
		if c.Sub, err = parseSub(sub, n); err != nil {
			return nil, nil, nil, err
		}
	}
	c.Events = evs
	return c, main, sub, nil
}

// parseAnnexB splits an Annex-B stream into access units at access unit delimiters.
func parseAnnexB(buf []byte, p Params) (*Clip, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(buf); err != nil {
		return nil, fmt.Errorf("camsim: encoded clip: %w", err)
	}
	c := &Clip{Params: p}
	var cur [][]byte
	flush := func() {
		if len(cur) > 0 {
			c.Units = append(c.Units, cur)
			cur = nil
		}
	}
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			flush()
			continue
		case h264.NALUTypeSPS:
			c.SPS = n
		case h264.NALUTypePPS:
			c.PPS = n
		}
		cur = append(cur, n)
	}
	flush()
	if c.SPS == nil || c.PPS == nil || len(c.Units) == 0 {
		return nil, errors.New("camsim: encoded clip has no SPS/PPS or no frames")
	}
	if !h264.IsRandomAccess(c.Units[0]) {
		return nil, errors.New("camsim: encoded clip does not start with an IDR frame")
	}
	return c, nil
}
