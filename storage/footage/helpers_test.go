package footage

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/clips"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// liveCamera serves camsim's small clip on one camera and returns the stream a session pulls
// from it; both stop with the test.
func liveCamera(t *testing.T) *streams.Stream {
	t.Helper()
	clip := clips.Small(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sim, err := camsim.NewServer(camsim.Config{RTSPAddress: addr, Cameras: 1}, []*camsim.Clip{clip}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sessions := rtsp.NewPool(quiet)
	t.Cleanup(sessions.Close)
	s, err := sessions.Add(rtsp.Config{ID: "cam001", URL: "rtsp://" + addr + "/cam/001"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Stream()
}
