package camsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
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
	return nil
}

// gopFrames is the key frame interval in frames.
func (p Params) gopFrames() int { return max(1, int(p.GOP*float64(p.FPS)+0.5)) }

// frames is the clip length rounded up to whole GOPs, so every loop starts on a key frame and
// the key frame cadence does not break at the seam.
func (p Params) frames() int {
	g := p.gopFrames()
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
}

// Duration is the clip length in seconds.
func (c *Clip) Duration() float64 { return float64(len(c.Units)) / float64(c.Params.FPS) }

// clipVersion changes whenever rendering changes, so cached clips are rebuilt.
const clipVersion = "6"

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
	c, annexb, err := render(ctx, lib, p, events, seed)
	if err != nil {
		return nil, err
	}
	if cacheDir != "" {
		_ = saveCached(cacheDir, key, annexb, c.Events) // a cache that cannot be written only costs time
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
	return c, nil
}

func saveCached(dir, key string, annexb []byte, evs []Event) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ej, _ := json.Marshal(evs)
	if err := os.WriteFile(filepath.Join(dir, key+".json"), ej, 0o644); err != nil {
		return err
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

func render(ctx context.Context, lib *Library, p Params, events []Event, seed uint64) (*Clip, []byte, error) {
	rng := rand.New(rand.NewPCG(seed, 7))
	bg := background(p.Width, p.Height, rng)
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
		default:
			err = fmt.Errorf("kind %q is not face or plate", e.Kind)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("camsim: event %d: %w", i, err)
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
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].e.Kind == "plate" && ps[j].e.Kind != "plate" })
	n := p.frames()
	args := []string{"-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba",
		"-s", fmt.Sprintf("%dx%d", p.Width, p.Height), "-r", fmt.Sprint(p.FPS), "-i", "-",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-profile:v", "main", "-bf", "0", "-g", fmt.Sprint(p.gopFrames()), "-keyint_min", fmt.Sprint(p.gopFrames()),
		"-sc_threshold", "0", "-b:v", fmt.Sprintf("%dk", p.Bitrate), "-minrate", fmt.Sprintf("%dk", p.Bitrate), "-maxrate", fmt.Sprintf("%dk", p.Bitrate),
		"-bufsize", fmt.Sprintf("%dk", p.Bitrate), "-x264-params", "aud=1:repeat-headers=1:sliced-threads=0:nal-hrd=cbr:force-cfr=1",
		"-f", "h264", "-"}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("camsim: starting ffmpeg (install Debian's ffmpeg): %w", err)
	}
	frame := image.NewRGBA(image.Rect(0, 0, p.Width, p.Height))
	var werr error
	for i := 0; i < n && werr == nil; i++ {
		t := float64(i) / float64(p.FPS)
		copy(frame.Pix, bg.Pix)
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
		_, werr = stdin.Write(frame.Pix)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return nil, nil, fmt.Errorf("camsim: ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return nil, nil, fmt.Errorf("camsim: feeding ffmpeg: %w", werr)
	}
	c, err := parseAnnexB(out.Bytes(), p)
	if err != nil {
		return nil, nil, err
	}
	if len(c.Units) != n {
		return nil, nil, fmt.Errorf("camsim: ffmpeg produced %d frames, want %d", len(c.Units), n)
	}
	c.Events = evs
	return c, out.Bytes(), nil
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
