package camsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"os/exec"
)

// x264Args are the encoder options of one output: CBR at the bit rate, a fixed key frame interval
// of gop frames, no B-frames (as surveillance cameras stream), parameter sets in front of every
// key frame and an access unit delimiter before every frame (parseAnnexB splits on them).
func x264Args(gop, kbps int) []string {
	return []string{"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-profile:v", "main", "-bf", "0", "-g", fmt.Sprint(gop), "-keyint_min", fmt.Sprint(gop),
		"-sc_threshold", "0", "-b:v", fmt.Sprintf("%dk", kbps), "-minrate", fmt.Sprintf("%dk", kbps), "-maxrate", fmt.Sprintf("%dk", kbps),
		"-bufsize", fmt.Sprintf("%dk", kbps), "-x264-params", "aud=1:repeat-headers=1:sliced-threads=0:nal-hrd=cbr:force-cfr=1",
		"-f", "h264"}
}

// encode feeds n frames drawn by draw to one ffmpeg process, which encodes the main stream to
// its stdout and, when p.Sub is set, the sub-stream (the same pictures scaled down) to a second
// pipe: one rendering, two streams frame for frame in step.
func encode(ctx context.Context, p Params, n int, draw func(i int, frame *image.RGBA)) (main, sub []byte, err error) {
	args := []string{"-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba",
		"-s", fmt.Sprintf("%dx%d", p.Width, p.Height), "-r", fmt.Sprint(p.FPS), "-i", "-", "-map", "0:v"}
	args = append(append(args, x264Args(p.gopFrames(), p.Bitrate)...), "pipe:1")
	var subR, subW *os.File
	if p.Sub != nil {
		if subR, subW, err = os.Pipe(); err != nil {
			return nil, nil, err
		}
		defer subR.Close()
		args = append(args, "-map", "0:v", "-vf", fmt.Sprintf("scale=%d:%d:flags=area", p.Sub.Width, p.Sub.Height))
		args = append(append(args, x264Args(p.subGOPFrames(), p.Sub.Bitrate)...), "pipe:3")
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if subW != nil {
		cmd.ExtraFiles = []*os.File{subW} // fd 3 in ffmpeg
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		if subW != nil {
			subW.Close()
		}
		return nil, nil, fmt.Errorf("camsim: starting ffmpeg (install Debian's ffmpeg): %w", err)
	}
	subDone := make(chan []byte, 1)
	if subW != nil {
		subW.Close() // ffmpeg holds its own copy; the reader sees EOF when ffmpeg exits
		go func() {
			b, _ := io.ReadAll(subR)
			subDone <- b
		}()
	}
	frame := image.NewRGBA(image.Rect(0, 0, p.Width, p.Height))
	var werr error
	for i := 0; i < n && werr == nil; i++ {
		draw(i, frame)
		_, werr = stdin.Write(frame.Pix)
	}
	stdin.Close()
	if subW != nil {
		sub = <-subDone
	}
	if err := cmd.Wait(); err != nil {
		return nil, nil, fmt.Errorf("camsim: ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return nil, nil, fmt.Errorf("camsim: feeding ffmpeg: %w", werr)
	}
	return out.Bytes(), sub, nil
}
