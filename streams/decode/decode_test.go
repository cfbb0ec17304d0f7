package decode

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/clips"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

var clip = clips.Small

// units turns a clip into the units a session would deliver (parameter sets in front of keys).
func units(c *camsim.Clip) []*streams.Unit { return clips.Units(c, time.Time{}) }

func decodeAll(t *testing.T, opts Options, us []*streams.Unit) []Frame {
	t.Helper()
	d, err := New(streams.H264, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var out []Frame
	for _, u := range us {
		f, err := d.Decode(u)
		if err != nil {
			t.Fatalf("unit at %v: %v", u.PTS, err)
		}
		if f != nil {
			cp := *f
			cp.BGR = append([]byte(nil), f.BGR...)
			out = append(out, cp)
		}
	}
	return out
}

func TestModes(t *testing.T) {
	c := clip(t)
	us := units(c)
	all := decodeAll(t, Options{Mode: All}, us)
	if len(all) != len(us) {
		t.Fatalf("all mode: %d frames from %d units", len(all), len(us))
	}
	f := all[0]
	if f.Width != 320 || f.Height != 240 || len(f.BGR) != 320*240*3 || !f.Key {
		t.Fatalf("first frame %dx%d key=%v", f.Width, f.Height, f.Key)
	}
	// camsim paints the sky RGB(150,180,215) across the top tenth: check colour order is BGR.
	p := f.BGR[5*f.Stride+160*3:]
	if abs(int(p[0])-215) > 12 || abs(int(p[1])-180) > 12 || abs(int(p[2])-150) > 12 {
		t.Fatalf("sky pixel BGR = %v, want about [215 180 150]", p[:3])
	}
	keys := decodeAll(t, Options{Mode: KeyOnly}, us)
	if len(keys) != 8 {
		t.Fatalf("key-only: %d frames, want 8 (4 s at 0.5 s GOP)", len(keys))
	}
	for _, k := range keys {
		if !k.Key {
			t.Fatal("key-only mode returned a non-key picture")
		}
	}
	sampled := decodeAll(t, Options{Mode: Sampling, FPS: 5}, us)
	if len(sampled) < 19 || len(sampled) > 21 {
		t.Fatalf("5 fps sampling of 4 s: %d frames", len(sampled))
	}
	for i := 1; i < len(sampled); i++ {
		if gap := sampled[i].PTS - sampled[i-1].PTS; gap < 190*time.Millisecond || gap > 210*time.Millisecond {
			t.Fatalf("sample gap %v", gap)
		}
	}
	small := decodeAll(t, Options{Mode: KeyOnly, MaxSide: 160}, us[:1])
	if small[0].Width != 160 || small[0].Height != 120 {
		t.Fatalf("scaled to %dx%d", small[0].Width, small[0].Height)
	}
}

// TestLumaThenBGR: DecodeLuma gives each picture's grey plane (camsim's sky, RGB(150,180,215),
// is Y ≈ 166 in video range), BGR converts the same picture Decode would, in every mode, and
// BGR refuses once the decoder has moved on.
func TestLumaThenBGR(t *testing.T) {
	us := units(clip(t))
	for _, opts := range []Options{{Mode: All}, {Mode: KeyOnly}, {Mode: Sampling, FPS: 5}} {
		want := decodeAll(t, opts, us)
		d, err := New(streams.H264, opts)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, u := range us {
			l, err := d.DecodeLuma(u)
			if err != nil {
				t.Fatal(err)
			}
			if l == nil {
				continue
			}
			if l.Y == nil || l.Width != 320 || l.Height != 240 || l.Stride < 320 || len(l.Y) < 239*l.Stride+320 {
				t.Fatalf("mode %v: luma %dx%d stride %d, %d bytes", opts.Mode, l.Width, l.Height, l.Stride, len(l.Y))
			}
			if y := int(l.Y[5*l.Stride+160]); l.Full || abs(y-166) > 8 {
				t.Fatalf("mode %v: sky Y = %d (full range %v), want about 166 in video range", opts.Mode, y, l.Full)
			}
			if n%3 == 0 { // converting some and not others: what the gate does
				f, err := d.BGR()
				if err != nil {
					t.Fatal(err)
				}
				if n >= len(want) || f.PTS != want[n].PTS || string(f.BGR) != string(want[n].BGR) {
					t.Fatalf("mode %v: picture %d converted after DecodeLuma differs from Decode's", opts.Mode, n)
				}
			}
			n++
		}
		if n != len(want) {
			t.Fatalf("mode %v: %d pictures from DecodeLuma, %d from Decode", opts.Mode, n, len(want))
		}
		if err := d.Advance(us[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := d.BGR(); err == nil {
			t.Fatalf("mode %v: BGR after Advance converted a picture it no longer holds", opts.Mode)
		}
		d.Close()
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestCorruptUnitsAreErrorsAndDecoderRecovers(t *testing.T) {
	c := clip(t)
	us := units(c)
	d, err := New(streams.H264, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Units before any key unit are skipped, not sent.
	if f, err := d.Decode(us[1]); f != nil || err != nil {
		t.Fatalf("non-key first unit: %v %v", f, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 2000)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	bad := &streams.Unit{Codec: streams.H264, Key: true, NALUs: [][]byte{c.SPS, c.PPS, append([]byte{0x65}, garbage...)}}
	sawErr := false
	for i := 0; i < 3; i++ {
		if _, err := d.Decode(bad); err != nil {
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("error of type %T", err)
			}
			sawErr = true
		}
	}
	truncated := &streams.Unit{Codec: streams.H264, Key: true, NALUs: [][]byte{c.SPS, c.PPS, us[0].NALUs[len(us[0].NALUs)-1][:40]}}
	d.Decode(truncated)
	if !sawErr {
		t.Log("garbage decoded without an error (libavcodec concealed it)")
	}
	n := 0
	for _, u := range us[25:] { // from a key unit on
		f, err := d.Decode(u)
		if err == nil && f != nil {
			n++
		}
	}
	if n < len(us[25:])-1 {
		t.Fatalf("decoder did not recover: %d of %d frames", n, len(us[25:]))
	}
	d.Close()
	if _, err := d.Decode(us[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("decode after close: %v", err)
	}
	if _, err := New("VP8", Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("VP8: %v", err)
	}
}

func TestMatCopiesFrame(t *testing.T) {
	us := units(clip(t))
	d, _ := New(streams.H264, Options{})
	defer d.Close()
	f, err := d.Decode(us[0])
	if err != nil || f == nil {
		t.Fatal(err)
	}
	m, err := f.Mat()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Rows() != 240 || m.Cols() != 320 || m.Channels() != 3 {
		t.Fatalf("mat %dx%dx%d", m.Cols(), m.Rows(), m.Channels())
	}
	v := m.GetVecbAt(5, 160)
	if v[0] != f.BGR[5*f.Stride+160*3] || v[2] != f.BGR[5*f.Stride+160*3+2] {
		t.Fatal("mat pixels differ from the frame")
	}
	// The Mat owns its pixels: decoding on must not change it.
	before := m.GetVecbAt(100, 100)
	for _, u := range us[1:10] {
		d.Decode(u)
	}
	if after := m.GetVecbAt(100, 100); after[0] != before[0] || after[1] != before[1] {
		t.Fatal("mat shares the decoder's buffer")
	}
}

// TestDecodesLiveRTSP decodes frames that crossed a real RTSP session from camsim.
func TestDecodesLiveRTSP(t *testing.T) {
	c := clip(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, err := camsim.NewServer(camsim.Config{RTSPAddress: "127.0.0.1:18655", Cameras: 1}, []*camsim.Clip{c}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	pool := rtsp.NewPool(log)
	defer pool.Close()
	s, _ := pool.Add(rtsp.Config{ID: "c", URL: "rtsp://127.0.0.1:18655/cam/001", BackoffMin: 100 * time.Millisecond})
	r := s.Stream().NewReader("decoder", 64)
	d, _ := New(streams.H264, Options{Mode: All})
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frames := 0
	for frames < 50 {
		u, err := r.Read(ctx)
		if err != nil {
			t.Fatalf("after %d frames: %v", frames, err)
		}
		f, err := d.Decode(u)
		if err != nil {
			t.Fatal(err)
		}
		if f != nil {
			if f.Width != 320 || f.Height != 240 {
				t.Fatalf("frame %dx%d", f.Width, f.Height)
			}
			frames++
		}
	}
}

// FuzzDecode feeds an arbitrary NAL unit to a decoder that has just decoded a real key frame
// (so it has state to corrupt); it must never crash. A fresh decoder per input keeps every
// failure reproducible from its input alone.
func FuzzDecode(f *testing.F) {
	c := clip(f)
	us := units(c)
	for _, u := range us[:3] {
		f.Add(u.NALUs[len(u.NALUs)-1], u.Key)
	}
	f.Add([]byte{0x65, 0x88, 0x84, 0x00}, true)
	f.Add([]byte{0x41}, false)
	f.Fuzz(func(t *testing.T, nalu []byte, key bool) {
		if len(nalu) == 0 {
			return
		}
		d, err := New(streams.H264, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if _, err := d.Decode(us[0]); err != nil {
			t.Fatal(err)
		}
		u := &streams.Unit{Codec: streams.H264, Key: key, NALUs: [][]byte{nalu}}
		if key {
			u.NALUs = [][]byte{c.SPS, c.PPS, nalu}
		}
		for i := 0; i < 2; i++ {
			if fr, err := d.Decode(u); err == nil && fr != nil && len(fr.BGR) != fr.Width*fr.Height*3 {
				t.Fatalf("frame buffer %d for %dx%d", len(fr.BGR), fr.Width, fr.Height)
			}
		}
	})
}
