package rtsp

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
)

// BenchmarkReconnect measures the time from a camera's return to `live` with the default
// backoff (1 s doubling to 30 s, ±20% jitter). The camera goes away, stays away for a random
// 0.2–3 s, and comes back; the goal is at most one backoff step + 1 s.
func BenchmarkReconnect(b *testing.B) {
	t := &testing.T{}
	clip := testClip(t)
	port := 18900
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	start := func() *camsim.Server {
		s, err := camsim.NewServer(camsim.Config{RTSPAddress: addr, Cameras: 1}, []*camsim.Clip{clip}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		return s
	}
	sim := start()
	pool := NewPool(quiet)
	defer pool.Close()
	s, _ := pool.Add(Config{ID: "r", URL: "rtsp://" + addr + "/cam/001", Transport: "tcp"})
	wait := func(st State, within time.Duration) time.Duration {
		t0 := time.Now()
		for s.Status().State != st {
			if time.Since(t0) > within {
				b.Fatalf("state %s, want %s", s.Status().State, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(t0)
	}
	wait(StateLive, 10*time.Second)
	var got []time.Duration
	var excess []time.Duration
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sim.Close()
		wait(StateBackoff, 15*time.Second)
		down := time.Duration(200+rng.IntN(2800)) * time.Millisecond
		time.Sleep(down)
		sim = start()
		back := time.Now()
		// The step in force when the camera came back: the wait the session is sleeping through.
		st := s.Status()
		step := st.Backoff
		if st.RetryAt != nil && st.RetryAt.Before(back) {
			step = 0 // it was already retrying
		}
		d := wait(StateLive, 40*time.Second)
		got = append(got, d)
		excess = append(excess, d-step)
		b.Logf("down %v → live %v after return (step %v)", down, d.Round(time.Millisecond), step)
	}
	b.StopTimer()
	sim.Close()
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	sort.Slice(excess, func(i, j int) bool { return excess[i] < excess[j] })
	b.ReportMetric(got[len(got)/2].Seconds(), "p50-return-to-live-s")
	b.ReportMetric(got[len(got)-1].Seconds(), "max-return-to-live-s")
	b.ReportMetric(excess[len(excess)-1].Seconds(), "max-minus-step-s")
}
