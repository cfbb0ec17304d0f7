package decode

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// TestH265FromFFmpeg: ffmpeg publishes H.265 (libx265) into camsim; a vigil session pulls it,
// assembles H.265 access units, and the decoder turns them into pictures.
func TestH265FromFFmpeg(t *testing.T) {
	testenv.Command(t, "ffmpeg")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, err := camsim.NewServer(camsim.Config{RTSPAddress: "127.0.0.1:18656"}, []*camsim.Clip{clip(t)}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	pub := exec.CommandContext(ctx, "ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=352x288:rate=15",
		"-pix_fmt", "yuv420p", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=15:log-level=error",
		"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://127.0.0.1:18656/pub/hevc")
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); pub.Wait() }()

	pool := rtsp.NewPool(log)
	defer pool.Close()
	s, _ := pool.Add(rtsp.Config{ID: "h", URL: "rtsp://127.0.0.1:18656/pub/hevc", BackoffMin: 200 * time.Millisecond, BackoffMax: time.Second})
	r := s.Stream().NewReader("dec", 64)
	var d *Decoder
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	frames := 0
	for frames < 10 {
		u, err := r.Read(rctx)
		if err != nil {
			t.Fatalf("after %d frames: %v (status %+v)", frames, err, s.Status())
		}
		if u.Codec != streams.H265 {
			t.Fatalf("codec %s", u.Codec)
		}
		if d == nil {
			if d, err = New(u.Codec, Options{}); err != nil {
				t.Fatal(err)
			}
			defer d.Close()
		}
		f, err := d.Decode(u)
		if err != nil {
			t.Fatal(err)
		}
		if f != nil {
			if f.Width != 352 || f.Height != 288 {
				t.Fatalf("H.265 frame %dx%d", f.Width, f.Height)
			}
			frames++
		}
	}
	if st := s.Status(); st.Codec != streams.H265 || st.Width != 352 {
		t.Fatalf("status %+v", st)
	}
}
