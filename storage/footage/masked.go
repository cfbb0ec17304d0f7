package footage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/core/privacy"
)

// ErrNoEncoder means footage cannot be masked on this node: ffmpeg is not installed. An export
// of a masked camera then leaves the footage out rather than include it unmasked.
var ErrNoEncoder = errors.New("footage: ffmpeg is needed to mask footage and is not installed")

// MaskMP4 re-encodes an MP4 clip (H.264) with the privacy masks blacked out in every frame:
// ffprobe reads the picture's size, the masks are drawn at exactly that size (no scaled, soft
// edges), and ffmpeg lays them over the video (libx264, CRF 20). The original is not changed.
// It takes up to two minutes.
func MaskMP4(ctx context.Context, mp4 []byte, masks privacy.Masks) ([]byte, error) {
	return mask(ctx, mp4, masks, "-movflags", "+faststart")
}

// MaskSegment re-encodes a recorded segment (fragmented MP4) with the masks, as a fragmented MP4
// again with the same frames, times and key frames (no B-frames, key frames where the source had
// them), so that it joins the camera's other masked segments in a clip.
func MaskSegment(ctx context.Context, seg []byte, masks privacy.Masks) ([]byte, error) {
	return mask(ctx, seg, masks, "-fps_mode", "passthrough", "-force_key_frames", "source", "-tune", "zerolatency",
		"-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4")
}

func mask(ctx context.Context, mp4 []byte, masks privacy.Masks, outArgs ...string) ([]byte, error) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, ErrNoEncoder
	}
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		return nil, ErrNoEncoder
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "vigil-mask-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, overlay, out := filepath.Join(dir, "in.mp4"), filepath.Join(dir, "mask.png"), filepath.Join(dir, "out.mp4")
	if err := os.WriteFile(in, mp4, 0o600); err != nil {
		return nil, err
	}
	size, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height", "-of", "csv=p=0", in).Output()
	if err != nil {
		return nil, fmt.Errorf("footage: the clip's size: %w", err)
	}
	ws, hs, _ := strings.Cut(strings.TrimSpace(string(size)), ",")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w < 1 || h < 1 || w > 8192 || h > 8192 {
		return nil, fmt.Errorf("footage: the clip's size %q", size)
	}
	var pb bytes.Buffer
	if err := png.Encode(&pb, masks.Overlay(w, h)); err != nil {
		return nil, err
	}
	if err := os.WriteFile(overlay, pb.Bytes(), 0o600); err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	args := []string{"-nostdin", "-v", "error", "-i", in, "-i", overlay,
		"-filter_complex", "[0:v][1:v]overlay=0:0:format=auto,format=yuv420p[v]", "-map", "[v]",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-an"}
	cmd := exec.CommandContext(ctx, ffmpeg, append(append(args, outArgs...), out)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("footage: masking the clip: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out)
}
