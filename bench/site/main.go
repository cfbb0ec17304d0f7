// Command site measures how many of the site's cameras one node analyses at the site's peak
// hour. For each camera count it runs camsim (a separate process) with --activity site --peak
// --substream 640x360 (street, door and gate cameras in the site's mix), analyses every camera
// in this process through the pipeline and the embedded bus, scores the events against camsim's
// ground truth, and raises the count until a target fails:
//
//   - identity recall ≥ 0.98 of enrolled residents' passages, no stranger matched;
//   - plate passages read ≥ 0.95;
//   - door camera frame → identified event (what unlocks the door) p99 ≤ 300 ms;
//   - street camera frame → identified event p99 ≤ 1 s;
//   - frames dropped ≤ 1% of those offered to the recognizers.
//
// Two configurations in the same run: "sub-stream" (detect on each camera's sub-stream, shots
// from the main stream, regions, plates only on gate cameras, door and gate cameras 2.5 frames a
// second, street cameras 1.25, key frames of the sub-stream only) and "today" (the main stream at
// the same rates, every frame decoded to sample them, whole-frame detection, faces and plates on
// every camera). vigil's CPU is this process's (camsim's is measured apart and not counted).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

type opts struct {
	mode           string
	window, warmup time.Duration
	camsim         string
	mdir           string
	workers        int
	cpuSlots       int
	noShotAhead    bool
	noDecodeAhead  bool
	noKeySlot      bool
	noStillSkip    bool
	noRest         bool
	doorMinFace    float64
	simNice        int
	simInStep      bool
	mainGOP        float64
	streetIdle     float64
	profile        string
	onWindow       func(start bool) // the profile's start and stop
}

func main() {
	var o opts
	subCounts := flag.String("cameras", "60,120,180,240,300,360", "camera counts to try with sub-streams, in order, until a load target fails (latency, drops)")
	todayCounts := flag.String("today", "10,20,30,40,50", "camera counts to try in today's configuration")
	flag.DurationVar(&o.window, "window", 90*time.Second, "measurement window per count")
	flag.DurationVar(&o.warmup, "warmup", 15*time.Second, "warm-up before the window")
	flag.StringVar(&o.camsim, "camsim", "bin/camsim", "camsim binary")
	flag.IntVar(&o.workers, "workers", 3, "face workers (one more than the cores: a worker waits while its shot is decoded)")
	flag.IntVar(&o.cpuSlots, "cpu-slots", 0, "native calls (decodes, models) run at once, door cameras' first (pipeline.Config.CPUSlots; 0: one per core, -1: no limit, every call on its own thread)")
	flag.Float64Var(&o.doorMinFace, "door-min-face", 0.2, "door cameras' smallest face, a fraction of the analysed picture's height, in both configurations (pipeline.door_min_face; camsim's door units see faces of 0.21 of the height and up; 0: every size, searched at full scale)")
	flag.BoolVar(&o.noDecodeAhead, "no-decode-ahead", false, "decode a door camera's main stream only for its shots, not ahead of them while someone is at the door (pipeline.Config.NoDecodeAhead)")
	flag.BoolVar(&o.noRest, "no-stranger-rest", false, "describe every face found on a track that has matched no one, not once a second after three descriptions (pipeline.Config.NoStrangerRest)")
	flag.BoolVar(&o.noStillSkip, "no-still-skip", false, "decode every sub-stream key frame the rate samples, though the coded pictures since the last show the scene still (pipeline.Config.NoStillSkip)")
	flag.BoolVar(&o.noKeySlot, "no-key-slot", false, "decode sub-stream key frames in the models' CPU slots, not in a slot of their own (pipeline.Config.NoKeyFrameSlot)")
	flag.BoolVar(&o.noShotAhead, "no-shot-ahead", false, "ask for a door frame's main-stream shot only once faces are found (pipeline.Config.NoShotAhead)")
	flag.StringVar(&o.profile, "profile", "", "write a CPU profile of the largest passing sub-stream count here")
	flag.Float64Var(&o.streetIdle, "street-idle-fps", 0.625, "a street camera's rate with sub-streams while nothing moves (cameras[].idle_fps; 0: always its 1.25)")
	flag.IntVar(&o.simNice, "camsim-nice", 0, "camsim's nice value (0: it shares the cores with vigil equally; 19: it takes what vigil leaves, as cameras that are other machines would)")
	flag.Float64Var(&o.mainGOP, "main-gop", 1, "seconds between the main streams' key frames (camsim --gop); 0.4, the sub-streams', puts every sub-stream key frame on a main one, so that a shot decodes one frame")
	flag.BoolVar(&o.simInStep, "camsim-in-step", false, "camsim sends every camera's frame at the same instant (camsim --in-step; by default the cameras' frames come spread over the frame interval)")
	ortSetting := flag.String("onnxruntime", "", "what runs the face detector and embedder, in both configurations (pipeline.onnxruntime): \"\" ONNX Runtime where installed, else OpenCV; a library path; off: OpenCV")
	flag.Parse()
	config.TuneGC()
	dnn.SetThreads(1)
	rt, note, err := dnn.Configure(*ortSetting)
	if err != nil {
		fail(err)
	}
	fmt.Printf("face networks on %s (%s)\n", rt, note)
	if o.mdir, err = models.Dir(os.Getenv("VIGIL_MODELS")); err != nil {
		fail(err)
	}
	// best: the largest N before any target failed (the verdict); carried: the largest N before
	// a load target failed, the counts going on past accuracy failures (the face model's errors
	// on these photos come with the passages a count adds, not with the node's load).
	best, carried := map[string]int{}, map[string]int{}
	var bestRun *result
	for _, mode := range []struct{ name, counts string }{{"today", *todayCounts}, {"sub-stream", *subCounts}} {
		o.mode = mode.name
		allMet := true
		for _, c := range strings.Split(mode.counts, ",") {
			n, _ := strconv.Atoi(strings.TrimSpace(c))
			if n <= 0 {
				continue
			}
			r, err := run(n, o)
			if err != nil {
				fail(err)
			}
			r.print()
			if !r.carried() {
				break
			}
			carried[mode.name] = n
			if allMet = allMet && r.ok(); allMet {
				best[mode.name] = n
				if mode.name == "sub-stream" {
					bestRun = r
				}
			}
		}
	}
	ratio := func(m map[string]int) string {
		if m["today"] == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.1f×)", float64(m["sub-stream"])/float64(m["today"]))
	}
	fmt.Printf("largest N meeting every target: today's configuration %d, sub-streams %d%s\n", best["today"], best["sub-stream"], ratio(best))
	fmt.Printf("largest N meeting the load targets (latency, drops), past accuracy failures: today's configuration %d, sub-streams %d%s\n",
		carried["today"], carried["sub-stream"], ratio(carried))
	if bestRun != nil && o.profile != "" {
		o.mode = "sub-stream"
		r, err := runProfiled(bestRun.n, o)
		if err != nil {
			fail(err)
		}
		r.printProfile(o.profile, best["today"])
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "site bench:", err)
	os.Exit(1)
}

// scenes is what the bench knows of the cameras: their scenes, as camsim gives them.
func scenes(n int) []string { return camsim.SiteScenes(n) }

func runProfiled(n int, o opts) (*result, error) {
	f, err := os.Create(o.profile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o.onWindow = func(start bool) {
		if start {
			_ = pprof.StartCPUProfile(f)
		} else {
			pprof.StopCPUProfile()
		}
	}
	return run(n, o)
}

// run measures one camera count in one configuration.
func run(n int, o opts) (*result, error) {
	sub := o.mode == "sub-stream"
	dir, err := os.MkdirTemp("", "vigil-site-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	truthFile := filepath.Join(dir, "truth.jsonl")
	addr := "127.0.0.1:18710"
	// Main stream GOP 1 s by default (today's capacity run), sub-stream GOP 0.4 s (10 frames at 25 fps, so
	// both GOPs fit camsim's 4 s clips): door and gate cameras take every key frame (2.5 a
	// second), street cameras every other (1.25).
	simPID, stopSim, err := measure.StartCamsim("nice", io.Discard, "-n", strconv.Itoa(o.simNice), o.camsim, "--cameras", strconv.Itoa(n), "--rtsp", addr, "--udp", "",
		"--activity", "site", "--peak", "--gop", strconv.FormatFloat(o.mainGOP, 'f', -1, 64), "--substream", "640x360", "--sub-gop", "0.4", "--truth", truthFile,
		fmt.Sprintf("--in-step=%t", o.simInStep))
	if err != nil {
		return nil, err
	}
	defer stopSim()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	m := pipeline.NewMetrics(reg)
	sc := scenes(n)
	fp, pp, err := pools(o, sub, sc, m, log)
	if err != nil {
		return nil, err
	}
	g, residents, err := gallery(o.mdir)
	if err != nil {
		return nil, err
	}
	b, err := bus.Open(ctx, bus.Config{}, log)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	col := newCollector()
	pl := pipeline.New(pipeline.Config{Faces: fp, Plates: pp, Gallery: g, Publisher: measure.Tee{col, pipeline.BusPublisher{Bus: b}}, Metrics: m, Log: log, CPUSlots: o.cpuSlots, NoShotAhead: o.noShotAhead, NoDecodeAhead: o.noDecodeAhead, NoKeyFrameSlot: o.noKeySlot, NoStillSkip: o.noStillSkip, NoStrangerRest: o.noRest, DoorMinFace: o.doorMinFace})
	pl.SetPriority(func(camera string) bool { return sc[camIndex(camera)] == camsim.PlaceDoor })
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pl.Start(pctx)
	pool, ids := rtsp.NewPool(log), make([]string, n)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("cam%03d", i)
		ids[i-1] = id
		if err := addCamera(pl, pool, id, addr, i, sc[i-1], sub, o.streetIdle); err != nil {
			return nil, err
		}
	}
	time.Sleep(o.warmup)
	st0, cpu0, sim0, steal0 := statsOf(pl, ids), measure.SelfCPU(), measure.ProcCPU(simPID), measure.Steal()
	stages0 := stageHistograms(reg)
	w0 := time.Now()
	col.reset()
	if o.onWindow != nil {
		o.onWindow(true)
	}
	time.Sleep(o.window)
	if o.onWindow != nil {
		o.onWindow(false)
	}
	w1 := time.Now()
	st1, cpu1, sim1, steal1 := statsOf(pl, ids), measure.SelfCPU(), measure.ProcCPU(simPID), measure.Steal()
	time.Sleep(3 * time.Second) // passages in progress at the window's end are published
	pool.Close()
	pcancel()
	pl.Wait()
	r := &result{n: n, mode: o.mode, scenes: sc, window: o.window, vigilCPU: (cpu1 - cpu0).Seconds() / o.window.Seconds(),
		camsimCPU: (sim1 - sim0).Seconds() / o.window.Seconds(), steal: (steal1 - steal0).Seconds() / o.window.Seconds(), offered: st1.Offered - st0.Offered, dropped: st1.Dropped - st0.Dropped,
		sampled: st1.Sampled - st0.Sampled, gated: st1.Gated - st0.Gated, still: st1.Still - st0.Still}
	if err := r.score(truthFile, col.all(), residents, w0, w1); err != nil {
		return nil, err
	}
	r.internals = internals(reg, func(camera string) string {
		if i := camIndex(camera); i >= 0 && i < len(sc) {
			return sc[i]
		}
		return "?"
	})
	r.stages = stageBreakdown(stages0, stageHistograms(reg))
	return r, nil
}

func camIndex(camera string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(camera, "cam"))
	return i - 1
}

// addCamera pulls camera i and analyses it as the configuration says.
func addCamera(pl *pipeline.Pipeline, pool *rtsp.Pool, id, addr string, i int, scene string, sub bool, streetIdle float64) error {
	main, err := pool.Add(rtsp.Config{ID: id, URL: fmt.Sprintf("rtsp://%s%s", addr, camsim.CameraPath(i))})
	if err != nil {
		return err
	}
	fps := 1.25 // a street camera: a passer-by is in view for 2–4 s
	if scene != camsim.PlaceStreet {
		fps = 2.5 // someone waits at the door; a car at the gate passes in seconds
	}
	if !sub {
		// Today: the main stream at the same rates (every frame decoded to sample them: its key
		// frames come once a second), faces and plates on every camera, whole frames.
		return pl.AddCamera(id, main.Stream(), pipeline.Options{FPS: fps, Faces: true, Plates: true, WholeFrame: true})
	}
	detect, err := pool.Add(rtsp.Config{ID: id + "/sub", URL: fmt.Sprintf("rtsp://%s%s", addr, camsim.SubPath(i))})
	if err != nil {
		return err
	}
	o := pipeline.Options{FPS: fps, KeyframesOnly: true, Faces: scene != camsim.PlaceGate, Plates: scene == camsim.PlaceGate, Main: main.Stream()}
	switch scene {
	case camsim.PlaceDoor:
		o.IdleFPS = 1.25 // until someone appears (cameras[].idle_fps)
	case camsim.PlaceStreet:
		o.IdleFPS = streetIdle
	}
	return pl.AddCamera(id, detect.Stream(), o)
}

// pools makes the recognizer pools: plate workers only when a camera reads plates.
func pools(o opts, sub bool, sc []string, m *pipeline.Metrics, log *slog.Logger) (*pipeline.Pool, *pipeline.Pool, error) {
	fp, err := pipeline.NewPool(pipeline.KindFace, o.workers, 8, func() (pipeline.Recognizer, error) {
		f, err := dnn.NewFaces(o.mdir, dnn.DetectorOptions{})
		return &pipeline.FaceRecognizer{Faces: f}, err
	}, m, log)
	if err != nil {
		return nil, nil, err
	}
	plateWorkers := o.workers
	if sub {
		plateWorkers = 1 // the gate cameras only
	}
	pp, err := pipeline.NewPool(pipeline.KindPlate, plateWorkers, 8, func() (pipeline.Recognizer, error) {
		p, err := dnn.NewPlates(o.mdir)
		r := &pipeline.PlateRecognizer{Plates: p}
		if sub { // the plate workers read the gate cameras only, as vigil serve reads gates
			r.Closer = func(string) bool { return true }
		}
		return r, err
	}, m, log)
	return fp, pp, err
}

func statsOf(pl *pipeline.Pipeline, ids []string) pipeline.CameraStats {
	var t pipeline.CameraStats
	for _, id := range ids {
		s, _ := pl.Stats(id)
		t.Sampled += s.Sampled
		t.Gated += s.Gated
		t.Still += s.Still
		t.Offered += s.Offered
		t.Dropped += s.Dropped
	}
	return t
}

// internals summarises the pipeline's own metrics: drops by reason, shots and their wait, and
// detector runs by scope (whole frames, regions); main-stream frames decoded and shots also by
// the camera's place (kind).
func internals(reg *prometheus.Registry, kind func(camera string) string) string {
	mfs, _ := reg.Gather()
	sums := map[string]float64{}
	var shotQ string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := strings.TrimPrefix(mf.GetName(), "vigil_pipeline_")
			for _, l := range m.GetLabel() {
				if l.GetName() != "camera" {
					key += "/" + l.GetValue()
				}
			}
			if h := m.GetHistogram(); h != nil && mf.GetName() == "vigil_pipeline_shot_seconds" {
				shotQ = fmt.Sprintf("shot wait p50 %s p99 %s", bucketQuantile(h.GetBucket(), h.GetSampleCount(), 0.5), bucketQuantile(h.GetBucket(), h.GetSampleCount(), 0.99))
				continue
			}
			if c := m.GetCounter(); c != nil {
				sums[key] += c.GetValue()
				if strings.HasPrefix(key, "main_frames") || strings.HasPrefix(key, "shots") || strings.HasPrefix(key, "faces_undescribed") {
					for _, l := range m.GetLabel() {
						if l.GetName() == "camera" {
							sums[key+"/"+kind(l.GetValue())] += c.GetValue()
						}
					}
				}
			}
		}
	}
	var parts []string
	for k, v := range sums {
		if strings.HasPrefix(k, "frames_dropped") || strings.HasPrefix(k, "shots") || strings.HasPrefix(k, "detector_runs") || strings.HasPrefix(k, "main_frames") || strings.HasPrefix(k, "faces_undescribed") {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
		}
	}
	sort.Strings(parts)
	return strings.Join(append(parts, shotQ), ", ")
}

// stageHistograms are the pipeline's stage histograms (vigil_pipeline_stage_seconds) by
// pool/stage/rank.
func stageHistograms(reg *prometheus.Registry) map[string]*dto.Histogram {
	out := map[string]*dto.Histogram{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "vigil_pipeline_stage_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["pool"]+"/"+l["stage"]+"/"+l["rank"]] = m.GetHistogram()
		}
	}
	return out
}

// stageBreakdown is where the face workers' time went in the window (after minus before):
// p50 and p99 of each stage, door cameras' frames and the others'.
func stageBreakdown(before, after map[string]*dto.Histogram) string {
	var parts []string
	for _, rank := range []string{"door", "other"} {
		var ps []string
		for _, stage := range []string{"ingest", "queue", "cpu", "detect", "shot", "describe"} {
			key := "face/" + stage + "/" + rank
			h := after[key]
			if h == nil {
				continue
			}
			hb := before[key]
			var bs []*dto.Bucket
			n := h.GetSampleCount() - hb.GetSampleCount()
			for i, b := range h.GetBucket() {
				c := b.GetCumulativeCount()
				if hb != nil {
					c -= hb.GetBucket()[i].GetCumulativeCount()
				}
				bs = append(bs, &dto.Bucket{CumulativeCount: &c, UpperBound: b.UpperBound})
			}
			if n == 0 {
				continue
			}
			ps = append(ps, fmt.Sprintf("%s %s/%s", stage, bucketQuantile(bs, n, 0.5), bucketQuantile(bs, n, 0.99)))
		}
		if len(ps) > 0 {
			parts = append(parts, rank+" frames (p50/p99): "+strings.Join(ps, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// bucketQuantile is the upper bound of the bucket holding quantile q.
func bucketQuantile(bs []*dto.Bucket, n uint64, q float64) string {
	for _, b := range bs {
		if float64(b.GetCumulativeCount()) >= q*float64(n) {
			return fmt.Sprintf("≤%.0fms", 1000*b.GetUpperBound())
		}
	}
	return "over the last bucket"
}
