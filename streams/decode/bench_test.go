package decode

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/paths"
	"github.com/vigil-oss/vigil/streams"
)

// buildClip renders (or loads from the clip cache) camsim's scripted scene with p.
func buildClip(b *testing.B, p camsim.Params) *camsim.Clip {
	dir := paths.Shared("testdata")
	if dir == "" {
		b.Skip("no testdata")
	}
	lib, err := camsim.LoadLibrary(dir)
	if err != nil {
		b.Fatal(err)
	}
	c, err := camsim.BuildClip(context.Background(), lib, p, lib.Script(1, p.Seconds), 1, filepath.Join(os.TempDir(), "vigil-test-clips"))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchClip is the 720p, 25 fps, 2 s GOP, 1.5 Mb/s clip camsim serves by default.
// The clip is repeated loops times so process start-up does not weigh on ffmpeg's figure.
func benchClip(b *testing.B, loops int) (*camsim.Clip, string) {
	c := buildClip(b, camsim.DefaultParams())
	// The same clip as an Annex-B file for ffmpeg.
	f := filepath.Join(b.TempDir(), "clip.h264")
	var buf []byte
	units := c.Units
	for l := 0; l < loops; l++ {
		for _, au := range units {
			for _, n := range au {
				buf = append(buf, 0, 0, 0, 1)
				buf = append(buf, n...)
			}
		}
	}
	for l := 1; l < loops; l++ {
		c.Units = append(c.Units, units...)
	}
	if err := os.WriteFile(f, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	return c, f
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ffmpegCPU decodes file with the ffmpeg CLI on one thread and returns its CPU time.
// bgr adds a conversion to bgr24, the work our decoder does.
func ffmpegCPU(b *testing.B, file string, keyOnly, bgr bool) time.Duration {
	full := []string{"-hide_banner", "-loglevel", "error", "-threads", "1"}
	if keyOnly {
		full = append(full, "-skip_frame", "nokey")
	}
	full = append(full, "-i", file)
	if bgr {
		full = append(full, "-pix_fmt", "bgr24")
	}
	full = append(full, "-f", "null", "-")
	cmd := exec.Command("ffmpeg", full...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v %s", err, out)
	}
	st := cmd.ProcessState
	return st.UserTime() + st.SystemTime()
}

func runMode(b *testing.B, c *camsim.Clip, opts Options) (frames int, cpu time.Duration) {
	return runKeys(b, c, opts, false)
}

// BenchmarkKeyframes reports key frames decoded to BGR per CPU-second, and the same for
// `ffmpeg -threads 1 -skip_frame nokey` on the same clip in the same run, with and without
// ffmpeg converting to bgr24 too.
func BenchmarkKeyframes(b *testing.B) {
	c, file := benchClip(b, 20)
	var frames int
	var cpu, ff, ffBGR time.Duration
	for i := 0; i < b.N; i++ {
		n, t := runMode(b, c, Options{Mode: KeyOnly})
		frames += n
		cpu += t
		ff += ffmpegCPU(b, file, true, false)
		ffBGR += ffmpegCPU(b, file, true, true)
	}
	ours := float64(frames) / cpu.Seconds()
	ref := float64(frames) / ff.Seconds()
	refBGR := float64(frames) / ffBGR.Seconds()
	b.ReportMetric(ours, "keyframes/cpu-s")
	b.ReportMetric(ref, "ffmpeg-keyframes/cpu-s")
	b.ReportMetric(ours/ref, "ratio-vs-ffmpeg")
	b.ReportMetric(ours/refBGR, "ratio-vs-ffmpeg-bgr24")
}

// BenchmarkAllFrames reports full-rate decode to BGR per CPU-second against ffmpeg likewise.
func BenchmarkAllFrames(b *testing.B) {
	c, file := benchClip(b, 3)
	var frames int
	var cpu, ff, ffBGR time.Duration
	for i := 0; i < b.N; i++ {
		n, t := runMode(b, c, Options{Mode: All})
		frames += n
		cpu += t
		ff += ffmpegCPU(b, file, false, false)
		ffBGR += ffmpegCPU(b, file, false, true)
	}
	ours := float64(frames) / cpu.Seconds()
	b.ReportMetric(ours, "frames/cpu-s")
	b.ReportMetric(float64(frames)/ff.Seconds(), "ffmpeg-frames/cpu-s")
	b.ReportMetric(ours/(float64(frames)/ff.Seconds()), "ratio-vs-ffmpeg")
	b.ReportMetric(ours/(float64(frames)/ffBGR.Seconds()), "ratio-vs-ffmpeg-bgr24")
}

// BenchmarkSubstreamKeyframes reports a site sub-stream's key frames (640×360, 0.4 s GOP,
// 400 kb/s, as bench/site analyses them) decoded per CPU-second: the motion gate's input, and
// the floor of a still camera's cost. Two ways, in turn in the same run: to BGR (what every key
// frame cost before the gate looked at the grey plane) and the grey plane only (what a frame the
// gate holds costs now), as a ratio.
func BenchmarkSubstreamKeyframes(b *testing.B) {
	p := camsim.Params{Width: 1280, Height: 720, FPS: 25, GOP: 1, Bitrate: 1500, Seconds: 24,
		Sub: &camsim.SubParams{Width: 640, Height: 360, GOP: 0.4, Bitrate: 400}}
	sub := &camsim.Clip{Params: p, Units: buildClip(b, p).Sub.Units}
	ways := []struct {
		name string
		opts Options
		luma bool
	}{
		{"bgr", Options{Mode: KeyOnly}, false},
		{"luma", Options{Mode: KeyOnly}, true},
	}
	frames := make([]int, len(ways))
	cpu := make([]time.Duration, len(ways))
	for i := 0; i < b.N; i++ {
		for range 5 {
			for w, way := range ways {
				n, t := runKeys(b, sub, way.opts, way.luma)
				frames[w] += n
				cpu[w] += t
			}
		}
	}
	base := float64(frames[0]) / cpu[0].Seconds()
	for w, way := range ways {
		rate := float64(frames[w]) / cpu[w].Seconds()
		b.ReportMetric(rate, way.name+"-keyframes/cpu-s")
		if w > 0 {
			b.ReportMetric(rate/base, way.name+"-vs-bgr")
		}
	}
}

// runKeys decodes c's units with opts, to BGR or to the grey plane only (DecodeLuma).
func runKeys(b *testing.B, c *camsim.Clip, opts Options, luma bool) (frames int, cpu time.Duration) {
	us := units(c)
	d, err := New(streams.H264, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	t0 := cpuNow()
	for _, u := range us {
		got := false
		if luma {
			l, err := d.DecodeLuma(u)
			if err != nil || (l != nil && l.Y == nil) {
				b.Fatalf("grey plane: %v", err)
			}
			got = l != nil
		} else {
			f, err := d.Decode(u)
			if err != nil {
				b.Fatal(err)
			}
			got = f != nil
		}
		if got {
			frames++
		}
	}
	return frames, cpuNow() - t0
}
