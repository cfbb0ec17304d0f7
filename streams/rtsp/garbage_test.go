package rtsp

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// garbageClip replaces some non-key units of a real clip with malformed ones: random bytes
// posing as FU-A and STAP-A packets, truncated NAL units, a wrong SPS, units without a picture.
func garbageClip(c *camsim.Clip) *camsim.Clip {
	rng := rand.New(rand.NewPCG(5, 5))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	bad := [][][]byte{
		{append([]byte{0x7c, 0x45}, random(200)...)},    // FU-A end fragment with no start
		{{0x78, 0xff, 0xff, 0x00}},                      // STAP-A with an impossible length
		{{0x67, 0xff, 0xff, 0xff}, {0x68, 0xce}},        // SPS that does not parse
		{{0x06, 0x05, 0x01, 0x00}},                      // SEI alone: no picture
		{append([]byte{0x7c, 0x85}, random(40)...), {}}, // FU-A start cut short
	}
	out := *c
	out.Units = append([][][]byte(nil), c.Units...)
	j := 0
	for i := range out.Units {
		if i%5 == 3 { // never a key unit at 0.5 s GOP (every 12.5th unit is key in this clip)
			key := false
			for _, n := range out.Units[i] {
				key = key || n[0]&0x1f == 5
			}
			if !key {
				out.Units[i] = bad[j%len(bad)]
				j++
			}
		}
	}
	return &out
}

func TestGarbageIsCountedLoggedAndSurvived(t *testing.T) {
	clip := garbageClip(testClip(t))
	port := freePort(t)
	sim := startSim(t, clip, camsim.Config{RTSPAddress: fmt.Sprintf("127.0.0.1:%d", port), Cameras: 1})
	defer sim.Close()
	var logs testenv.Buffer
	pool := NewPool(slog.New(slog.NewTextHandler(&logs, nil)))
	defer pool.Close()
	cfg := testConfig("g", fmt.Sprintf("rtsp://127.0.0.1:%d/cam/001", port))
	cfg.ErrorLogInterval = time.Second
	s, _ := pool.Add(cfg)
	waitState(t, s, StateLive, 5*time.Second)
	r := s.Stream().NewReader("r", 256)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, units := 0, 0
	for keys < 4 {
		u, err := r.Read(ctx)
		if err != nil {
			t.Fatalf("after %d units: %v", units, err)
		}
		units++
		if u.Key {
			keys++
		}
	}
	time.Sleep(1500 * time.Millisecond)
	st := s.Status()
	if st.State != StateLive || st.Reconnects != 0 {
		t.Fatalf("garbage broke the session: %+v", st)
	}
	if st.Malformed == 0 {
		t.Fatal("malformed input was not counted")
	}
	n := strings.Count(logs.String(), "malformed stream input")
	if n == 0 || uint64(n) >= st.Malformed {
		t.Fatalf("%d log lines for %d malformed inputs: want aggregated lines", n, st.Malformed)
	}
	t.Logf("%d malformed inputs counted, %d log lines, %d good units read", st.Malformed, n, units)
}
