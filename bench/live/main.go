// Command live measures the WebRTC relay: camsim cameras (720p, ~1.5 Mb/s, a key frame every
// 2 s, each frame stamped with its send time) → vigil serve (RTSP in, WHEP out) → headless pion
// WHEP viewers in this process, added in steps. For each step it reports whether every viewer
// kept ≥ 90% of the camera's frame rate, the time from offer to first frame, the latency the
// relay adds (camsim's send → the viewer's receipt, from the SEI stamp), vigil's CPU per viewer
// and the bytes sent.
//
//	go run ./bench/live --steps 100,200,300,400,500,600,700 --hold 10s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/sim/whep"
)

func main() {
	cams := flag.Int("cameras", 4, "camsim cameras; viewers are spread over them")
	steps := flag.String("steps", "50,100,200,300,400,500,600,700,800", "viewer counts to try, ascending")
	hold := flag.Duration("hold", 10*time.Second, "measured time per step")
	vigil := flag.String("vigil", "bin/vigil", "vigil binary")
	camsimBin := flag.String("camsim", "bin/camsim", "camsim binary")
	fps := flag.Int("fps", 25, "camera frame rate")
	cpuprofile := flag.String("cpuprofile", "", "write this process's (the viewers') CPU profile of the whole run here")
	batch := flag.Bool("batch", false, "live.batch_writes (sendmmsg) on the relay")
	browser := flag.Int("browser", 0, "first, this many offers from headless Chromium (web/test/first-frame.mjs) on the idle node")
	browserAt := flag.Int("browser-at", 0, "and this many again while the node carries the first step of at least --browser-at viewers (0: not under load)")
	joinRate := flag.Float64("join-rate", 0, "open new viewers at most this many per second (0: 16 at a time, as fast as they connect)")
	nodeCPUs := flag.String("node-cpus", "", "pin vigil to these CPUs (taskset list, e.g. 0) and the viewers and camsim to the others, so that the load generator does not take the node's CPU")
	flag.Parse()
	if *nodeCPUs != "" && os.Getenv("VIGIL_BENCH_PINNED") == "" {
		if err := pinSelf(*nodeCPUs); err != nil {
			fmt.Fprintln(os.Stderr, "live bench: --node-cpus:", err)
			os.Exit(2)
		}
	}
	// The viewers are the load generator: a lazier GC leaves more of the machine to the node.
	debug.SetGCPercent(400)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	var counts []int
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintln(os.Stderr, "live bench: --steps:", err)
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	if err := run(*cams, counts, *hold, *vigil, *camsimBin, *fps, *browser, *browserAt, *batch, *nodeCPUs, *joinRate); err != nil {
		fmt.Fprintln(os.Stderr, "live bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type viewerStats struct {
	v       *whep.Viewer
	mu      sync.Mutex
	latency []time.Duration
}

func run(cams int, counts []int, hold time.Duration, vigil, camsimBin string, fps, browserTrials, browserAt int, batch bool, nodeCPUs string, joinRate float64) error {
	data, _ := os.MkdirTemp("", "vigil-bench-live-")
	defer os.RemoveAll(data)
	_, stopSim, err := measure.StartCamsim(camsimBin, os.Stderr, "--cameras", fmt.Sprint(cams), "--rtsp", "127.0.0.1:18610", "--udp", "", "--seed", "5",
		"--width", "1280", "--height", "720", "--fps", fmt.Sprint(fps), "--gop", "2", "--bitrate", "1500", "--timestamps",
		"--truth", filepath.Join(data, "truth.jsonl"))
	if err != nil {
		return err
	}
	defer stopSim()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "http: {addr: 127.0.0.1:18995, open_without_database: true}\ndatabase: {enabled: false}\npipeline: {enabled: false}\nfootage: {enabled: false}\nlog: {level: warn}\nlive: {udp_addr: '127.0.0.1:18189', max_viewers: 5000, batch_writes: %v}\ncameras:\n", batch)
	for i := 1; i <= cams; i++ {
		fmt.Fprintf(&yaml, "  - {id: cam%03d, url: rtsp://127.0.0.1:18610/cam/%03d}\n", i, i)
	}
	cfgPath := filepath.Join(data, "vigil.yaml")
	os.WriteFile(cfgPath, []byte(yaml.String()), 0o600)
	srv := exec.Command(vigil, "serve", "--config", cfgPath, "--data", data)
	if nodeCPUs != "" {
		srv = exec.Command("taskset", "-c", nodeCPUs, vigil, "serve", "--config", cfgPath, "--data", data)
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	base := "http://127.0.0.1:18995"
	if err := waitCameras(base, cams); err != nil {
		return err
	}
	fmt.Printf("live relay (batch_writes %v): %d camsim cameras, 1280x720 at %d fps, GOP 2 s, 1.5 Mb/s, each frame stamped with its send time; viewers: headless pion WHEP clients in the bench process on loopback\n", batch, cams, fps)
	if nodeCPUs != "" {
		fmt.Printf("vigil pinned to CPU %s; camsim, the viewers and Chromium to CPU %s\n", nodeCPUs, os.Getenv("VIGIL_BENCH_PINNED"))
	} else {
		fmt.Printf("vigil, camsim, the viewers and Chromium share all %d CPUs\n", runtime.NumCPU())
	}
	fmt.Printf("first frame: from the offer to the first whole frame at the viewer; \"16 at once\" while the step's viewers open 16 at a time, \"alone\" one viewer opened on the loaded node (5 tries); refused: 503 (at capacity), failed: no answer in 10 s, ended: sessions the node shed or whose ICE failed\n")
	fmt.Printf("%8s %9s %9s %9s %18s %14s %14s %10s %9s %8s %7s %5s\n", "viewers", "healthy", "min fps", "Mb/s out", "first 16@once p50/95", "first alone p50/max", "added p50/p95", "vigil CPU", "µs/frame", "refused", "failed", "ended")
	if browserTrials > 0 {
		if err := browserFirstFrames(base, cams, browserTrials, 0); err != nil {
			return err
		}
	}
	ctx := context.Background()
	client := &http.Client{Timeout: 10 * time.Second}
	var all []*viewerStats
	defer func() {
		for _, s := range all {
			s.v.Close(true)
		}
	}()
	best := 0
	var pace <-chan time.Time // joins paced at joinRate
	if joinRate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / joinRate))
		defer t.Stop()
		pace = t.C
	}
	for _, n := range counts {
		// Add viewers up to n, a few at a time (as a wall of browsers would open).
		var first []time.Duration
		var fmu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		var failed []error
		newFrom := len(all)
		for i := len(all); i < n; i++ {
			if pace != nil {
				<-pace
			}
			s := &viewerStats{}
			cam := fmt.Sprintf("cam%03d", i%cams+1)
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				v, err := whep.Dial(ctx, base+"/v1/live/"+cam+"/whep", whep.Options{Client: client, ReadBuffer: 1 << 20, OnPacket: func(p *rtp.Packet, at time.Time) {
					if t, ok := stamp(p.Payload); ok {
						s.mu.Lock()
						s.latency = append(s.latency, at.Sub(t))
						s.mu.Unlock()
					}
				}})
				fmu.Lock()
				defer fmu.Unlock()
				if err != nil {
					failed = append(failed, err)
					return
				}
				s.v = v
				all = append(all, s)
			})
		}
		wg.Wait()
		refused, lost := 0, 0
		var lastErr error
		for _, err := range failed {
			var we *whep.Error
			if errors.As(err, &we) && we.Status == http.StatusServiceUnavailable {
				refused++ // the node at capacity: admission control
				continue
			}
			lost++ // no answer in time, or ICE/DTLS never connected: the node is past its capacity
			lastErr = err
		}
		if lost > 0 {
			fmt.Fprintf(os.Stderr, "live bench: %d offers failed at step %d, the last: %v\n", lost, n, lastErr)
			if len(all) == 0 {
				return lastErr
			}
		}
		time.Sleep(3 * time.Second) // every new viewer connected and past its GOP burst
		for i, s := range all {
			if ff := s.v.FirstFrame(); ff > 0 && i >= newFrom {
				first = append(first, ff)
			}
			s.mu.Lock()
			s.latency = s.latency[:0]
			s.mu.Unlock()
		}
		shed := 0
		all = slices.DeleteFunc(all, func(s *viewerStats) bool { // the node shed them, or ICE failed
			if s.v.Ended() {
				shed++
				s.v.Close(false)
				return true
			}
			return false
		})
		frames0 := make([]int64, len(all))
		var bytes0 int64
		for i, s := range all {
			frames0[i] = s.v.Frames.Load()
			bytes0 += s.v.Bytes.Load()
		}
		cpu0 := measure.ProcCPU(srv.Process.Pid)
		t0 := time.Now()
		time.Sleep(hold)
		el := time.Since(t0)
		cpu := measure.ProcCPU(srv.Process.Pid) - cpu0
		minFPS := 1e9
		healthy := 0
		var bytes1 int64
		var lat []time.Duration
		var frames int64
		measured := 0
		for i, s := range all {
			bytes1 += s.v.Bytes.Load()
			if s.v.Ended() {
				shed++ // during the hold
				continue
			}
			measured++
			df := s.v.Frames.Load() - frames0[i]
			frames += df
			f := float64(df) / el.Seconds()
			minFPS = min(minFPS, f)
			if f >= 0.9*float64(fps) {
				healthy++
			}
			s.mu.Lock()
			lat = append(lat, s.latency...)
			s.mu.Unlock()
		}
		// And a viewer opened alone, five times, on a node carrying n viewers.
		var alone []time.Duration
		for i := range 5 {
			v, err := whep.Dial(ctx, fmt.Sprintf("%s/v1/live/cam%03d/whep", base, i%cams+1), whep.Options{Client: client})
			if err != nil {
				continue // refused (503: the node is at capacity) or failed: no first frame to time
			}
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			if v.WaitFrames(c, 1) == nil {
				alone = append(alone, v.FirstFrame())
			}
			cancel()
			v.Close(true)
		}
		if browserAt > 0 && browserTrials > 0 && n >= browserAt {
			browserAt = 0
			if err := browserFirstFrames(base, cams, browserTrials, len(all)); err != nil {
				return err
			}
		}
		slices.Sort(alone)
		slices.Sort(first)
		slices.Sort(lat)
		mbps := float64(bytes1-bytes0) * 8 / el.Seconds() / 1e6
		ok := healthy == measured
		if ok {
			best = max(best, measured)
		}
		fmt.Printf("%8d %9s %9.1f %9.0f %18s %14s %14s %9.0f%% %9.1f %8d %7d %5d\n", n, fmt.Sprintf("%d/%d", healthy, measured), minFPS, mbps,
			pct(first, 50)+"/"+pct(first, 95), pct(alone, 50)+"/"+pct(alone, 100), pct(lat, 50)+"/"+pct(lat, 95), 100*cpu.Seconds()/el.Seconds(), float64(cpu.Microseconds())/float64(max(frames, 1)), refused, lost, shed)
		if !ok && n > best*3/2 {
			break
		}
	}
	fmt.Printf("most viewers with every one at ≥ 90%% of %d fps: %d (viewers beyond the node's capacity are refused with 503)\n", fps, best)
	return nil
}

// stamp finds camsim's send-time SEI in an RTP payload (a single NAL unit or a STAP-A).
func stamp(payload []byte) (time.Time, bool) {
	if len(payload) == 0 {
		return time.Time{}, false
	}
	switch payload[0] & 0x1f {
	case 6:
		return camsim.ParseTimeSEI(payload)
	case 24:
		for b := payload[1:]; len(b) > 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				break
			}
			if t, ok := camsim.ParseTimeSEI(b[2 : 2+n]); ok {
				return t, true
			}
			b = b[2+n:]
		}
	}
	return time.Time{}, false
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fms", float64(d[min(len(d)-1, len(d)*p/100)].Microseconds())/1e3)
}

func waitCameras(base string, n int) error {
	for i := 0; i < 300; i++ {
		r, err := http.Get(base + "/v1/cameras")
		if err == nil {
			var res struct {
				Cameras []struct {
					State string `json:"state"`
				} `json:"cameras"`
			}
			json.NewDecoder(r.Body).Decode(&res)
			r.Body.Close()
			live := 0
			for _, c := range res.Cameras {
				if c.State == "live" {
					live++
				}
			}
			if live == n {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vigil did not report %d live cameras", n)
}

// browserFirstFrames runs web/test/first-frame.mjs: offers from headless Chromium, offer → first
// decoded frame presented.
func browserFirstFrames(base string, cams, trials, load int) error {
	var ids []string
	for i := 1; i <= cams; i++ {
		ids = append(ids, fmt.Sprintf("cam%03d", i))
	}
	cmd := exec.Command("node", "first-frame.mjs")
	cmd.Dir = "web/test"
	cmd.Env = append(os.Environ(), "BASE="+base, "CAMERAS="+strings.Join(ids, ","), "TRIALS="+strconv.Itoa(trials))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("first-frame.mjs (npm ci --prefix web/test; apt-get install chromium): %w", err)
	}
	var res struct{ FirstFrameMs []float64 }
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("first-frame.mjs: %w: %s", err, out)
	}
	var ds []time.Duration
	failed, refused := 0, 0
	for _, ms := range res.FirstFrameMs {
		if ms == -2 {
			refused++
			continue
		}
		if ms < 0 {
			failed++
			continue
		}
		ds = append(ds, time.Duration(ms*float64(time.Millisecond)))
	}
	slices.Sort(ds)
	node := "the idle node"
	if load > 0 {
		node = fmt.Sprintf("the node carrying %d viewers", load)
	}
	fmt.Printf("Chromium, WHEP offer → first decoded frame presented (requestVideoFrameCallback), %d offers over %d cameras on %s: p50 %s, p95 %s, max %s, %d without a frame in 5 s, %d refused (503)\n",
		len(res.FirstFrameMs), cams, node, pct(ds, 50), pct(ds, 95), pct(ds, 100), failed, refused)
	return nil
}

// pinSelf runs this bench again under taskset on the CPUs that nodeCPUs leaves (camsim and the
// viewers inherit them); vigil is started under taskset on nodeCPUs.
func pinSelf(nodeCPUs string) error {
	node := map[int]bool{}
	for _, f := range strings.Split(nodeCPUs, ",") {
		lo, hi, _ := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return err
		}
		b := a
		if hi != "" {
			if b, err = strconv.Atoi(hi); err != nil {
				return err
			}
		}
		for c := a; c <= b; c++ {
			node[c] = true
		}
	}
	var rest []string
	for c := range runtime.NumCPU() {
		if !node[c] {
			rest = append(rest, strconv.Itoa(c))
		}
	}
	if len(rest) == 0 || len(node) == 0 {
		return fmt.Errorf("%q leaves no CPU for the viewers (this machine has %d)", nodeCPUs, runtime.NumCPU())
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	list := strings.Join(rest, ",")
	return syscall.Exec(taskset, append([]string{"taskset", "-c", list, self}, os.Args[1:]...), append(os.Environ(), "VIGIL_BENCH_PINNED="+list))
}
