// Command pipeline measures the recognition pipeline on camsim's scenes: for each camera count
// it runs camsim (a separate process), pulls every camera, analyses them at the given rate with
// the motion gate on, and prints frames sampled, gated and dropped, events, the latency from an
// access unit's arrival to its event on the bus (p50, p99), and CPU. The largest count that
// drops under 1% of sampled frames is the node's capacity at that rate.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

func main() {
	counts := flag.String("cameras", "4,8,12,16", "camera counts to try")
	fps := flag.Float64("fps", 1, "analysed frames per second per camera")
	keyframes := flag.Bool("keyframes", true, "sample key frames only (camsim GOP = 1/fps)")
	window := flag.Duration("window", 30*time.Second, "measurement window per count")
	workers := flag.Int("workers", 2, "workers per recognizer kind")
	faceOnly := flag.Bool("faces-only", false, "door cameras: faces only")
	camsimBin := flag.String("camsim", "bin/camsim", "camsim binary")
	flag.Parse()
	config.TuneGC()
	dnn.SetThreads(1)
	for _, c := range strings.Split(*counts, ",") {
		n, _ := strconv.Atoi(strings.TrimSpace(c))
		if err := run(n, *fps, *keyframes, *window, *workers, *faceOnly, *camsimBin); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline bench:", err)
			os.Exit(1)
		}
	}
}

// latencies records, for events published on a confident identity (the door path), the time
// from the arrival of the shot's access unit to publication. Unmatched passages are published
// when they end, so their "latency" is the passage itself; they are counted, not timed.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	n  int
}

func (l *latencies) Publish(_ context.Context, e *event.Event) error {
	l.mu.Lock()
	if e.Match != nil {
		l.d = append(l.d, time.Since(e.Arrival))
	}
	l.n++
	l.mu.Unlock()
	return nil
}

func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l.d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func run(n int, fps float64, keyframes bool, window time.Duration, workers int, faceOnly bool, camsimBin string) error {
	addr := "127.0.0.1:18700"
	gop := "2"
	if keyframes {
		gop = strconv.FormatFloat(1/fps, 'f', 2, 64)
	}
	simPID, stopSim, err := measure.StartCamsim(camsimBin, io.Discard, "--cameras", strconv.Itoa(n), "--rtsp", addr, "--udp", "", "--gop", gop, "--truth", os.DevNull)
	if err != nil {
		return err
	}
	defer stopSim()
	mdir, err := models.Dir(os.Getenv("VIGIL_MODELS"))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	m := pipeline.NewMetrics(reg)
	fp, err := pipeline.NewPool(pipeline.KindFace, workers, 8, func() (pipeline.Recognizer, error) {
		f, err := dnn.NewFaces(mdir, dnn.DetectorOptions{})
		return &pipeline.FaceRecognizer{Faces: f}, err
	}, m, log)
	if err != nil {
		return err
	}
	var pp *pipeline.Pool
	if !faceOnly {
		if pp, err = pipeline.NewPool(pipeline.KindPlate, workers, 8, func() (pipeline.Recognizer, error) {
			p, err := dnn.NewPlates(mdir)
			return &pipeline.PlateRecognizer{Plates: p}, err
		}, m, log); err != nil {
			return err
		}
	}
	lat := &latencies{}
	b, err := bus.Open(ctx, bus.Config{}, log)
	if err != nil {
		return err
	}
	defer b.Close()
	pub := measure.Tee{lat, pipeline.BusPublisher{Bus: b}}
	g, err := enrolAll(mdir)
	if err != nil {
		return err
	}
	pl := pipeline.New(pipeline.Config{Faces: fp, Plates: pp, Gallery: g, Publisher: pub, Metrics: m, Log: log})
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pl.Start(pctx)
	pool := rtsp.NewPool(log)
	for i := 1; i <= n; i++ {
		s, _ := pool.Add(rtsp.Config{ID: fmt.Sprintf("cam%03d", i), URL: fmt.Sprintf("rtsp://%s/cam/%03d", addr, i)})
		if err := pl.AddCamera(fmt.Sprintf("cam%03d", i), s.Stream(), pipeline.Options{FPS: fps, KeyframesOnly: keyframes, Faces: true, Plates: !faceOnly}); err != nil {
			return err
		}
	}
	time.Sleep(5 * time.Second) // warm up
	s0, cpu0, sim0 := totals(reg), measure.SelfCPU(), measure.ProcCPU(simPID)
	lat.mu.Lock()
	lat.d, lat.n = nil, 0
	lat.mu.Unlock()
	time.Sleep(window)
	s1, cpu1, sim1 := totals(reg), measure.SelfCPU(), measure.ProcCPU(simPID)
	el := window.Seconds()
	pool.Close()
	pcancel()
	pl.Wait()
	sampled, gated, dropped := s1.sampled-s0.sampled, s1.gated-s0.gated, s1.dropped-s0.dropped
	fmt.Printf("%2d cameras at %.1f fps (%s): sampled %.0f/s, gated %.0f%%, dropped %.1f%% of analysed, events %d (%.1f/s), identified-event latency (%d) p50 %v p99 %v, vigil CPU %.0f%% of a core, camsim %.0f%%\n",
		n, fps, map[bool]string{true: "key frames", false: "all frames decoded"}[keyframes],
		sampled/el, 100*gated/max(1, sampled), 100*dropped/max(1, sampled-gated), lat.n, float64(lat.n)/el, len(lat.d),
		lat.pct(0.5).Round(time.Millisecond), lat.pct(0.99).Round(time.Millisecond),
		100*(cpu1-cpu0).Seconds()/el, 100*(sim1-sim0).Seconds()/el)
	return nil
}

type counts struct{ sampled, gated, dropped float64 }

func totals(reg *prometheus.Registry) counts {
	var c counts
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		var dst *float64
		switch mf.GetName() {
		case "vigil_pipeline_frames_sampled_total":
			dst = &c.sampled
		case "vigil_pipeline_frames_gated_total":
			dst = &c.gated
		case "vigil_pipeline_frames_dropped_total":
			dst = &c.dropped
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			*dst += counterValue(m)
		}
	}
	return c
}

func counterValue(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

// enrolAll enrols every test identity from its first photo, as camsim's people.
func enrolAll(mdir string) (*pipeline.Gallery, error) {
	td := testdata.Dir()
	lib, err := camsim.LoadLibrary(td)
	if err != nil {
		return nil, err
	}
	faces, err := dnn.NewFaces(mdir, dnn.DetectorOptions{})
	if err != nil {
		return nil, err
	}
	defer faces.Close()
	g := pipeline.NewGallery(pipeline.MatchOptions{})
	for _, id := range lib.Identities() {
		img, err := recognizers.LoadImage(filepath.Join(td, lib.Faces[id][0]))
		if err != nil {
			return nil, err
		}
		e, _, err := pipeline.EnrolFace(faces, img, pipeline.EnrolGate{})
		img.Close()
		if err == nil {
			g.Add(pipeline.Person{ID: id, Name: id, List: "residents", Embeddings: []recognizers.Embedding{e}})
		}
	}
	return g, nil
}
