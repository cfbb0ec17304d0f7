package rtsp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/clips"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/streams"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testClip(t *testing.T) *camsim.Clip { return clips.Small(t) }

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeUDPPair finds an even port p with p and p+1 free for UDP (RTP and RTCP).
func freeUDPPair(t *testing.T) int {
	for p := 20000 + 2*(os.Getpid()%5000); p < 65000; p += 2 {
		a, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no free UDP port pair")
	return 0
}

func startSim(t *testing.T, clip *camsim.Clip, cfg camsim.Config) *camsim.Server {
	t.Helper()
	s, err := camsim.NewServer(cfg, []*camsim.Clip{clip}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func testConfig(id, url string) Config {
	return Config{ID: id, URL: url, Transport: "tcp", BackoffMin: 200 * time.Millisecond, BackoffMax: time.Second, ReadTimeout: 2 * time.Second}
}

func waitState(t *testing.T, s *Session, want State, within time.Duration) Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := s.Status()
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera %s: state %s (last error %q), want %s within %v", st.ID, st.State, st.LastError, want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionsGoLiveAndFanOut(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clip := testClip(t)
	port := freePort(t)
	sim := startSim(t, clip, camsim.Config{RTSPAddress: fmt.Sprintf("127.0.0.1:%d", port), Cameras: 3})
	defer sim.Close()

	pool := NewPool(quiet)
	defer pool.Close()
	var sessions []*Session
	for i := 1; i <= 3; i++ {
		s, err := pool.Add(testConfig(fmt.Sprintf("cam%d", i), fmt.Sprintf("rtsp://127.0.0.1:%d/cam/%03d", port, i)))
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	if _, err := pool.Add(testConfig("cam1", "rtsp://127.0.0.1:1/x")); err == nil {
		t.Fatal("duplicate camera id accepted")
	}
	for _, s := range sessions {
		waitState(t, s, StateLive, 5*time.Second)
	}
	// Two readers on one camera share its session and each sees a key unit first.
	a := sessions[0].Stream().NewReader("a", 64)
	b := sessions[0].Stream().NewReader("b", 64)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range []*streams.Reader{a, b} {
		u, err := r.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Key || u.Codec != streams.H264 || len(u.NALUs) < 3 {
			t.Fatalf("first unit: key=%v codec=%s nalus=%d", u.Key, u.Codec, len(u.NALUs))
		}
		for i := 0; i < 30; i++ {
			if _, err := r.Read(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(1200 * time.Millisecond) // one full rate window
	st := sessions[0].Status()
	if st.Width != 320 || st.Height != 240 || st.Codec != streams.H264 || st.Readers != 2 {
		t.Fatalf("status %+v", st)
	}
	if st.FPS < 15 || st.FPS > 35 || st.Bitrate == 0 || st.LastKeyframe == nil {
		t.Fatalf("rates fps=%.1f bitrate=%d lastkey=%v", st.FPS, st.Bitrate, st.LastKeyframe)
	}
	if st.LostPackets != 0 || st.Malformed != 0 || st.Dropped != 0 {
		t.Fatalf("losses on loopback: %+v", st)
	}
	a.Close()
	b.Close()

	// Removing a camera ends its session and its readers, and leaves the others alone.
	r := sessions[1].Stream().NewReader("r", 8)
	if !pool.Remove("cam2") {
		t.Fatal("remove failed")
	}
	// What was queued before the removal is still read (at most the reader's 8), then the end.
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	var err error
	for n := 0; n <= 8 && err == nil; n++ {
		_, err = r.Read(rctx)
	}
	if err != streams.ErrClosed {
		t.Fatalf("reader of removed camera: %v", err)
	}
	if len(pool.Statuses()) != 2 || sessions[2].Status().State != StateLive {
		t.Fatal("other cameras disturbed by a removal")
	}
}

func TestUDPTransport(t *testing.T) {
	clip := testClip(t)
	port := freePort(t)
	udp := freeUDPPair(t)
	sim := startSim(t, clip, camsim.Config{RTSPAddress: fmt.Sprintf("127.0.0.1:%d", port), Cameras: 1,
		UDPRTPAddress: fmt.Sprintf("127.0.0.1:%d", udp), UDPRTCPAddress: fmt.Sprintf("127.0.0.1:%d", udp+1)})
	defer sim.Close()
	pool := NewPool(quiet)
	defer pool.Close()
	cfg := testConfig("u", fmt.Sprintf("rtsp://127.0.0.1:%d/cam/001", port))
	cfg.Transport = "udp"
	s, _ := pool.Add(cfg)
	st := waitState(t, s, StateLive, 5*time.Second)
	if st.Transport != "udp" {
		t.Fatalf("transport %q", st.Transport)
	}
}

func TestCameraDownAtStartGoesAwayAndReturns(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clip := testClip(t)
	portA, portB := freePort(t), freePort(t)
	addrA := fmt.Sprintf("127.0.0.1:%d", portA)
	simB := startSim(t, clip, camsim.Config{RTSPAddress: fmt.Sprintf("127.0.0.1:%d", portB), Cameras: 1})
	defer simB.Close()

	pool := NewPool(quiet)
	defer pool.Close()
	a, _ := pool.Add(testConfig("a", "rtsp://"+addrA+"/cam/001"))
	b, _ := pool.Add(testConfig("b", fmt.Sprintf("rtsp://127.0.0.1:%d/cam/001", portB)))
	waitState(t, b, StateLive, 5*time.Second)
	st := waitState(t, a, StateBackoff, 3*time.Second)
	if !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("down camera error %q", st.LastError)
	}

	// The camera comes up: live within one backoff step (max 1 s) + 1 s.
	simA := startSim(t, clip, camsim.Config{RTSPAddress: addrA, Cameras: 1})
	t0 := time.Now()
	waitState(t, a, StateLive, 4*time.Second)
	t.Logf("down at start → live %v after the camera came up", time.Since(t0).Round(time.Millisecond))

	// It goes away mid-stream: a leaves live, b does not notice.
	unitsB := b.Status().Units
	simA.Close()
	waitState(t, a, StateBackoff, 3*time.Second)
	time.Sleep(300 * time.Millisecond)
	if sb := b.Status(); sb.State != StateLive || sb.Units <= unitsB {
		t.Fatalf("camera b disturbed: %+v", sb)
	}
	// And comes back.
	simA = startSim(t, clip, camsim.Config{RTSPAddress: addrA, Cameras: 1})
	defer simA.Close()
	t0 = time.Now()
	sa := waitState(t, a, StateLive, 4*time.Second)
	t.Logf("return → live %v", time.Since(t0).Round(time.Millisecond))
	if sa.Reconnects < 2 {
		t.Fatalf("reconnects %d", sa.Reconnects)
	}
	pool.Close()
	if st := a.Status(); st.State != StateStopped {
		t.Fatalf("state after close %s", st.State)
	}
}

func TestNotFoundAndBadCredentialsFail(t *testing.T) {
	clip := testClip(t)
	port := freePort(t)
	sim := startSim(t, clip, camsim.Config{RTSPAddress: fmt.Sprintf("127.0.0.1:%d", port), Cameras: 1, User: "admin", Pass: "right"})
	defer sim.Close()
	pool := NewPool(quiet)
	defer pool.Close()
	nf, _ := pool.Add(testConfig("nf", fmt.Sprintf("rtsp://admin:right@127.0.0.1:%d/cam/404", port)))
	bad, _ := pool.Add(testConfig("bad", fmt.Sprintf("rtsp://admin:wrongpass@127.0.0.1:%d/cam/001", port)))
	good, _ := pool.Add(testConfig("good", fmt.Sprintf("rtsp://admin:right@127.0.0.1:%d/cam/001", port)))
	st := waitState(t, nf, StateFailed, 3*time.Second)
	if !strings.Contains(st.LastError, "404") {
		t.Fatalf("404 error %q", st.LastError)
	}
	st = waitState(t, bad, StateFailed, 3*time.Second)
	if !strings.Contains(st.LastError, "401") || strings.Contains(st.LastError, "wrongpass") {
		t.Fatalf("auth error %q", st.LastError)
	}
	if strings.Contains(st.URL, "wrongpass") {
		t.Fatalf("password in status URL %q", st.URL)
	}
	waitState(t, good, StateLive, 5*time.Second)
	// Failed cameras keep retrying with backoff.
	time.Sleep(1500 * time.Millisecond)
	if r := bad.Status().Reconnects; r < 2 {
		t.Fatalf("failed camera retried %d times", r)
	}
}

func TestReadsStreamPublishedByFFmpeg(t *testing.T) {
	testenv.Command(t, "ffmpeg")
	clip := testClip(t)
	port := freePort(t)
	sim := startSim(t, clip, camsim.Config{RTSPAddress: fmt.Sprintf("127.0.0.1:%d", port), Cameras: 0})
	defer sim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := exec.CommandContext(ctx, "ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=424x240:rate=15",
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
		"-f", "rtsp", "-rtsp_transport", "tcp", fmt.Sprintf("rtsp://127.0.0.1:%d/pub/ffmpeg", port))
	pub.Stderr = os.Stderr
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer pub.Wait()
	defer cancel()
	pool := NewPool(quiet)
	defer pool.Close()
	s, _ := pool.Add(testConfig("ff", fmt.Sprintf("rtsp://127.0.0.1:%d/pub/ffmpeg", port)))
	st := waitState(t, s, StateLive, 10*time.Second)
	if st.Width != 424 || st.Height != 240 {
		t.Fatalf("ffmpeg stream seen as %dx%d", st.Width, st.Height)
	}
	r := s.Stream().NewReader("r", 32)
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	u, err := r.Read(rctx)
	if err != nil || !u.Key {
		t.Fatalf("first unit from ffmpeg: %v %v", u, err)
	}
}
