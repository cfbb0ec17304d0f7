// Command sessions measures how many camera sessions one vigil process holds: it starts camsim
// as a separate process, pulls every camera through streams/rtsp with one draining reader per
// camera (the fan-out in place), and prints time to all live, CPU and memory per camera, and
// lost units, plus camsim's own CPU.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/footage"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

func main() {
	n := flag.Int("cameras", 625, "cameras")
	camsimBin := flag.String("camsim", "bin/camsim", "camsim binary")
	window := flag.Duration("window", 30*time.Second, "measurement window")
	bitrate := flag.Int("bitrate", 1500, "kbit/s per camera")
	addr := flag.String("rtsp", "127.0.0.1:18600", "camsim address")
	memprofile := flag.String("memprofile", "", "write a heap profile at the end of the window")
	record := flag.Bool("record", false, "also record every camera to fMP4 segments on disk")
	flag.Parse()
	memProfile = *memprofile
	fmt.Printf("GOGC %d (vigil's default unless GOGC is set)\n", config.TuneGC())
	recordDir = ""
	if *record {
		d, err := os.MkdirTemp("", "vigil-bench-footage-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(d)
		recordDir = d
	}
	if err := run(*n, *camsimBin, *window, *bitrate, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
}

func run(n int, camsimBin string, window time.Duration, bitrate int, addr string) error {
	simPID, stopSim, err := measure.StartCamsim(camsimBin, os.Stderr, "--cameras", strconv.Itoa(n), "--rtsp", addr, "--udp", "",
		"--bitrate", strconv.Itoa(bitrate), "--truth", os.DevNull, "--clips", "4")
	if err != nil {
		return err
	}
	defer stopSim()
	runtime.GC()
	baseRSS := measure.RSSKB(os.Getpid())

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := rtsp.NewPool(log)
	defer pool.Close()
	var received atomic.Uint64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	t0 := time.Now()
	var sessions []*rtsp.Session
	for i := 1; i <= n; i++ {
		s, err := pool.Add(rtsp.Config{ID: fmt.Sprintf("cam%03d", i), URL: fmt.Sprintf("rtsp://%s/cam/%03d", addr, i), Transport: "tcp"})
		if err != nil {
			return err
		}
		sessions = append(sessions, s)
		if recordDir != "" {
			rec := footage.NewRecorder(fmt.Sprintf("cam%03d", i), s.Stream(), blob.FS{Root: recordDir}, &memIndex{}, footage.Options{}, log)
			wg.Add(1)
			go func() { defer wg.Done(); rec.Run(ctx) }()
		}
		r := s.Stream().NewReader("bench", 128)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := r.Read(ctx); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	var allLive time.Duration
	for {
		live := 0
		for _, s := range sessions {
			if s.Status().State == rtsp.StateLive {
				live++
			}
		}
		if live == n {
			allLive = time.Since(t0)
			break
		}
		if time.Since(t0) > 60*time.Second {
			return fmt.Errorf("only %d of %d cameras live after 60 s", live, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("cameras: %d at %d kbit/s, all live in %v (recording: %v)\n", n, bitrate, allLive.Round(time.Millisecond), recordDir != "")
	time.Sleep(5 * time.Second) // settle

	before := snapshot(sessions)
	cpu0, sim0 := measure.SelfCPU(), measure.ProcCPU(simPID)
	recv0 := received.Load()
	w0 := time.Now()
	time.Sleep(window)
	el := time.Since(w0).Seconds()
	cpu1, sim1 := measure.SelfCPU(), measure.ProcCPU(simPID)
	after := snapshot(sessions)
	recv := received.Load() - recv0
	rss := measure.RSSKB(os.Getpid())

	vigilCore := (cpu1 - cpu0).Seconds() / el * 100
	simCore := (sim1 - sim0).Seconds() / el * 100
	expected := float64(n) * 25 * el
	fmt.Printf("window: %.1f s\n", el)
	fmt.Printf("vigil sessions: %.1f%% of one core in all, %.3f%% per camera\n", vigilCore, vigilCore/float64(n))
	fmt.Printf("vigil memory: RSS %.1f MB (%.1f MB before cameras), %.3f MB per camera\n",
		float64(rss)/1024, float64(baseRSS)/1024, float64(rss-baseRSS)/1024/float64(n))
	fmt.Printf("units: %d received by readers (%.1f%% of %d·25 fps·window), %.1f Mb/s in\n",
		recv, 100*float64(recv)/expected, n, float64(after.bytes-before.bytes)*8/el/1e6)
	fmt.Printf("lost: rtp packets %d, malformed %d, reader drops %d, reconnects %d\n",
		after.lost-before.lost, after.malformed-before.malformed, after.dropped-before.dropped, after.reconnects-before.reconnects)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.GC()
	writeHeap() // after the forced GC: what is really live
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	fmt.Printf("live heap after a forced GC: %.1f MB (%.3f MB per camera)\n", float64(live.HeapAlloc)/1e6, float64(live.HeapAlloc)/1e6/float64(n))
	fmt.Printf("go memory: heap in use %.1f MB, heap idle %.1f MB, stacks %.1f MB, %d goroutines, GC cycles %d\n",
		float64(ms.HeapInuse)/1e6, float64(ms.HeapIdle-ms.HeapReleased)/1e6, float64(ms.StackInuse)/1e6, runtime.NumGoroutine(), ms.NumGC)
	fmt.Printf("camsim (%d cameras): %.1f%% of one core\n", n, simCore)
	return nil
}

var memProfile, recordDir string

// memIndex keeps the segments index in memory: the recorder's cost without the database's.
type memIndex struct {
	mu   sync.Mutex
	segs []footage.Segment
}

func (m *memIndex) AddSegment(_ context.Context, s footage.Segment) error {
	m.mu.Lock()
	m.segs = append(m.segs, s)
	m.mu.Unlock()
	return nil
}

func (m *memIndex) Segments(context.Context, string, time.Time, time.Time) ([]footage.Segment, error) {
	return nil, nil
}

func writeHeap() {
	if memProfile == "" {
		return
	}
	f, err := os.Create(memProfile)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.WriteHeapProfile(f)
}

type totals struct{ lost, malformed, dropped, reconnects, bytes uint64 }

func snapshot(ss []*rtsp.Session) totals {
	var t totals
	for _, s := range ss {
		st := s.Status()
		t.lost += st.LostPackets
		t.malformed += st.Malformed
		t.dropped += st.Dropped
		t.reconnects += st.Reconnects
		t.bytes += st.Bytes
	}
	return t
}
