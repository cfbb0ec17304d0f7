package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// scenario: enrolled residents walk past with photos other than their enrolment photos; a
// stranger (never enrolled) walks past; a listed car drives by.
func scenario(lib *camsim.Library) []camsim.Event {
	evs := []camsim.Event{
		{Kind: "face", Identity: "obama", Photo: "faces/obama/2.jpg", Start: 0.3, Duration: 3.5, Size: 120, Y: 0.35},
		{Kind: "face", Identity: "jeff_bezos", Photo: "faces/jeff_bezos/1.jpg", Start: 2.0, Duration: 3.5, Size: 90, Y: 0.45, Reverse: true},
		{Kind: "plate", Plate: "粤B12345", Start: 4.0, Duration: 3.5, Size: 160},
		{Kind: "face", Identity: "kit_harington", Photo: "faces/kit_harington/2.jpg", Start: 6.5, Duration: 3.5, Size: 150, Y: 0.4},
		{Kind: "face", Identity: "angelina_jolie", Photo: "faces/angelina_jolie/3.jpg", Start: 8.0, Duration: 3.5, Size: 70, Y: 0.3, Reverse: true},
	}
	for i := range evs {
		_ = lib.Resolve(&evs[i])
	}
	return evs
}

// enrolled residents and their enrolment photos: never the photo camsim walks past.
var enrolled = map[string][]string{
	"obama":          {"faces/obama/1.jpg", "faces/obama/3.jpg", "faces/obama/4.jpg"},
	"kit_harington":  {"faces/kit_harington/1.jpg", "faces/kit_harington/3.jpg"},
	"angelina_jolie": {"faces/angelina_jolie/1.jpg", "faces/angelina_jolie/2.jpg", "faces/angelina_jolie/4.jpg"},
}

type collector struct {
	mu     sync.Mutex
	events []*event.Event
}

func (c *collector) Publish(_ context.Context, e *event.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	return nil
}

func (c *collector) all() []*event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*event.Event(nil), c.events...)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestCamsimPassagesBecomeIdentifiedEvents runs the whole path — camsim RTSP, sessions, decode,
// motion gate, recognizer pools, trackers, matcher, the NATS bus — and scores the events
// against camsim's ground truth. E2E_CAMERAS and E2E_SECONDS scale it up (the run is
// 16 cameras for 60 s: bench/run.sh accuracy).
func TestCamsimPassagesBecomeIdentifiedEvents(t *testing.T) {
	r := runCamsim(t, false)
	score(t, r.truth, r.events, r.start, r.closed, r.dropped > 0)
	checkOnBus(t, r.events)
}

// TestDualStreamSameIdentities: a camera analysed on its sub-stream (640x360, detect_url) gives
// the same identities and plate reads as on its main stream, and its best shots come from the
// main stream's pictures (boxes and crops at the main's resolution, decoded on demand).
func TestDualStreamSameIdentities(t *testing.T) {
	single := runCamsim(t, false)
	dual := runCamsim(t, true)
	score(t, dual.truth, dual.events, dual.start, dual.closed, dual.dropped > 0)
	checkOnBus(t, dual.events)
	ids := func(evs []*event.Event) map[string]bool {
		out := map[string]bool{}
		for _, e := range evs {
			if e.Match != nil {
				out[e.Match.PersonID+e.Match.Plate] = true
			}
		}
		return out
	}
	if a, b := ids(single.events), ids(dual.events); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("identities and plates on the main stream %v, on the sub-stream %v", a, b)
	}
	// Detected on the sub-stream at half the size, described on the main picture: the best shot's
	// box is in the main's pixels, as big as the main-stream run's.
	boxes := map[string]float32{}
	for _, e := range single.events {
		if e.Kind == KindFace && e.Match != nil {
			boxes[e.Match.PersonID] = max(boxes[e.Match.PersonID], e.Box.H)
		}
	}
	for _, e := range dual.events {
		if e.Kind != KindFace || e.Match == nil {
			continue
		}
		if want := boxes[e.Match.PersonID]; e.Box.H < 0.75*want || e.Box.H > 1.25*want {
			t.Errorf("%s: best shot box %.0f px high from the sub-stream run, %.0f px from the main-stream run", e.Match.PersonID, e.Box.H, want)
		}
	}
	var shots, decoded, skipped float64
	for i := 1; i <= dual.cams; i++ {
		shots += testutilValue(dual.metrics.shots.WithLabelValues(fmt.Sprintf("cam%03d", i), "ok"))
		decoded += testutilValue(dual.metrics.mainDecoded.WithLabelValues(fmt.Sprintf("cam%03d", i)))
		skipped += testutilValue(dual.metrics.undescribed.WithLabelValues(fmt.Sprintf("cam%03d", i)))
	}
	t.Logf("sub-stream run: %.0f shots from the main streams, %.0f main frames decoded, %.0f faces of published passages not described again", shots, decoded, skipped)
	if shots == 0 {
		t.Fatal("no shot came from a main stream")
	}
	// Faces of passages already published go undescribed (the identities above are unchanged).
	if skipped == 0 {
		t.Error("every face of a published passage was described again")
	}
	// Where the workers' time went is recorded stage by stage: every frame waited in the queue
	// and was searched; the frames described waited for their shot, then were described.
	count := func(stage string) (n uint64) {
		for _, rank := range []string{"door", "other"} {
			var m dto.Metric
			_ = dual.metrics.stages.WithLabelValues(KindFace, stage, rank).(prometheus.Metric).Write(&m)
			n += m.GetHistogram().GetSampleCount()
		}
		return n
	}
	queued, detected, shot, described := count("queue"), count("detect"), count("shot"), count("describe")
	t.Logf("stages recorded: %d queued, %d searched, %d shots waited for, %d described", queued, detected, shot, described)
	if queued == 0 || detected < queued || shot == 0 || described == 0 || described > detected {
		t.Errorf("stage counts: %d queued, %d searched, %d shots, %d described", queued, detected, shot, described)
	}
}

// checkOnBus: every event crossed the bus whole: best shot as a JPEG, faces with their embedding.
func checkOnBus(t *testing.T, got []*event.Event) {
	t.Helper()
	for _, e := range got {
		if len(e.Snapshot) < 2 || e.Snapshot[0] != 0xff || e.Snapshot[1] != 0xd8 {
			t.Errorf("event %s on the bus has no JPEG snapshot (%d bytes)", e.ID, len(e.Snapshot))
		}
		if e.Kind == KindFace && (len(e.Embedding) != 4*space.DefaultSpace.Dims || e.Model != space.DefaultSpace.Name) {
			t.Errorf("face event %s on the bus has a %d-byte embedding", e.ID, len(e.Embedding))
		}
	}
}

// camsimRun is what one runCamsim saw.
type camsimRun struct {
	truth         string
	events        []*event.Event
	start, closed time.Time
	dropped       float64
	cams          int
	metrics       *Metrics
}

// runCamsim plays the scenario on camsim cameras through the whole pipeline; dual analyses each
// camera's 640x360 sub-stream with shots from its main stream.
func runCamsim(t *testing.T, dual bool) camsimRun {
	td, mdir := testenv.Testdata(t), testenv.Models(t)
	cams, secs := envInt("E2E_CAMERAS", 3), envInt("E2E_SECONDS", 13)
	workers := envInt("E2E_WORKERS", 1)
	opts := Options{FPS: float64(envInt("E2E_FPS", 4)), KeyframesOnly: os.Getenv("E2E_KEYFRAMES") != "", Faces: true, Plates: true}
	dnn.SetThreads(1)
	defer dnn.SetThreads(0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lib, err := camsim.LoadLibrary(td)
	if err != nil {
		t.Fatal(err)
	}
	p := camsim.Params{Width: 1280, Height: 720, FPS: 10, GOP: 1, Bitrate: 1500, Seconds: 12}
	if dual {
		p.Sub = &camsim.SubParams{Width: 640, Height: 360, GOP: 1, Bitrate: 500}
	}
	clip, err := camsim.BuildClip(context.Background(), lib, p, scenario(lib), 1, os.TempDir()+"/vigil-test-clips")
	if err != nil {
		t.Fatal(err)
	}
	var truthBuf testenv.Buffer
	tw := camsim.NewTruthWriter(&truthBuf)
	addr := freeAddr(t)
	sim, err := camsim.NewServer(camsim.Config{RTSPAddress: addr, Cameras: cams, Truth: tw, Seed: 7}, []*camsim.Clip{clip}, log)
	if err != nil {
		t.Fatal(err)
	}
	g := enrolledGallery(t, td, mdir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var onBus collector
	stop, _ := b.Subscribe(event.SubjectPrefix+".>", func(_ string, data []byte) {
		if e, err := event.Unpack(data); err == nil {
			onBus.Publish(ctx, e)
		}
	})
	defer stop()

	m := NewMetrics(nil)
	fp := facePool(t, mdir, workers, 8, m, log)
	pp, err := NewPool(KindPlate, workers, 8, func() (Recognizer, error) {
		pl, err := dnn.NewPlates(mdir)
		return &PlateRecognizer{Plates: pl}, err
	}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	pl := New(Config{Faces: fp, Plates: pp, Gallery: g, Publisher: BusPublisher{Bus: b}, Metrics: m, Log: log})
	pl.Start(ctx)
	pool := rtsp.NewPool(log)
	for i := 1; i <= cams; i++ {
		id := fmt.Sprintf("cam%03d", i)
		s, _ := pool.Add(rtsp.Config{ID: id, URL: fmt.Sprintf("rtsp://%s/cam/%03d", addr, i)})
		analysed, o := s.Stream(), opts
		if dual {
			sub, _ := pool.Add(rtsp.Config{ID: id + "/detect", URL: fmt.Sprintf("rtsp://%s/cam/%03d/sub", addr, i)})
			analysed, o.Main = sub.Stream(), s.Stream()
		}
		if err := pl.AddCamera(id, analysed, o); err != nil {
			t.Fatal(err)
		}
	}
	// Sessions connect before the fleet starts, so every camera sees its clip from its offset on.
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(time.Duration(secs) * time.Second)
	sim.Close() // no new passages; the ones in progress end by the gap
	closed := time.Now()
	tw.Flush()
	time.Sleep(2500 * time.Millisecond)
	cancel()
	pl.Wait()
	pool.Close()

	var dropped float64
	for _, k := range []string{KindFace, KindPlate} {
		for i := 1; i <= cams; i++ {
			for _, reason := range []string{dropFull, dropSuperseded} {
				dropped += testutilValue(m.drops.WithLabelValues(fmt.Sprintf("cam%03d", i), k, reason))
			}
		}
	}
	t.Logf("dual %v: %d cameras, %d s, sampling %+v, %d workers per kind: %.0f frames dropped by full queues", dual, cams, secs, opts, workers, dropped)
	return camsimRun{truth: truthBuf.String(), events: onBus.all(), start: start, closed: closed, dropped: dropped, cams: cams, metrics: m}
}

// enrolledGallery enrols the residents from other photos and lists a plate.
func enrolledGallery(t *testing.T, td, mdir string) *Gallery {
	faces, err := dnn.NewFaces(mdir, dnn.DetectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer faces.Close()
	g := NewGallery(MatchOptions{})
	for id, photos := range enrolled {
		for _, photo := range photos {
			img, err := recognizers.LoadImage(td + "/" + photo)
			if err != nil {
				t.Fatal(err)
			}
			e, _, err := EnrolFace(faces, img, EnrolGate{})
			img.Close()
			if err != nil {
				t.Fatalf("enrol %s: %v", id, err)
			}
			g.Add(Person{ID: id, Name: id, List: "residents", Embeddings: []recognizers.Embedding{e}})
		}
	}
	g.AddPlate(ListedPlate{Text: "粤B12345", List: "blacklist"})
	return g
}

// facePool is a pool of face workers with the default models, stopped with the test's context.
func facePool(t *testing.T, mdir string, workers, queue int, m *Metrics, log *slog.Logger) *Pool {
	t.Helper()
	fp, err := NewPool(KindFace, workers, queue, func() (Recognizer, error) {
		f, err := dnn.NewFaces(mdir, dnn.DetectorOptions{})
		return &FaceRecognizer{Faces: f}, err
	}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// startFleet serves cams cameras playing clip until the test ends, and returns the address.
func startFleet(t *testing.T, clip *camsim.Clip, cams int, seed uint64, log *slog.Logger) string {
	t.Helper()
	addr := freeAddr(t)
	sim, err := camsim.NewServer(camsim.Config{RTSPAddress: addr, Cameras: cams, Seed: seed}, []*camsim.Clip{clip}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return addr
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// score matches ground-truth passages to events on the same camera whose first detection falls
// in the passage (with slack), and checks identities.
// overloaded says frames were dropped by full queues (the machine was busier than the run
// needs, as when CI runs other packages' tests beside this one): a small face may then be lost
// long enough to split its passage in two, which is tolerated for up to a quarter of the
// passages; identities must still be right.
func score(t *testing.T, truth string, events []*event.Event, start, closed time.Time, overloaded bool) {
	t.Helper()
	type passage struct {
		camsim.TruthLine
		got []*event.Event
		cut bool // the end of the run cut it short: events are assigned to it, but it is not scored
	}
	var ps []*passage
	for _, l := range strings.Split(strings.TrimSpace(truth), "\n") {
		var tl camsim.TruthLine
		if json.Unmarshal([]byte(l), &tl) != nil {
			continue
		}
		// Passages cut short by the end of the run, or starting while the cameras were starting
		// (when passages already in view have no truth line to claim their events), are not scored.
		ps = append(ps, &passage{TruthLine: tl, cut: tl.Leave.After(closed) || tl.Enter.Before(start.Add(2*time.Second))})
	}
	// Each event belongs to the passage camsim.Owner names (on its camera, of its kind, entry
	// nearest to the first detection; of the identity the event names when passages overlap).
	used := map[*event.Event]bool{}
	line := func(i int) *camsim.TruthLine { return &ps[i].TruthLine }
	for _, e := range events {
		if i := camsim.Owner(len(ps), line, e, true); i >= 0 {
			ps[i].got = append(ps[i].got, e)
			used[e] = true
		}
	}
	var enrolledPassages, rightID, wrongID, strangerMatched, plates, platesRead, dup int
	for _, p := range ps {
		if p.cut {
			continue
		}
		if len(p.got) > 1 {
			dup++
			t.Logf("passage %s %s%s at %s: %d events", p.Camera, p.Identity, p.Plate, p.Enter.Sub(start).Round(time.Millisecond), len(p.got))
		}
		switch {
		case p.Kind == "plate":
			plates++
			for _, e := range p.got {
				if e.Plate != nil && e.Plate.Text == p.Plate && e.Match != nil && e.Match.List == "blacklist" {
					platesRead++
					break
				}
			}
		case enrolled[p.Identity] != nil:
			enrolledPassages++
			ok := false
			for _, e := range p.got {
				if e.Match != nil && e.Match.PersonID == p.Identity {
					ok = true
				} else if e.Match != nil {
					wrongID++
				}
			}
			if ok {
				rightID++
			} else {
				t.Logf("missed %s on %s at %s (events %d)", p.Identity, p.Camera, p.Enter.Sub(start).Round(time.Millisecond), len(p.got))
			}
		default:
			for _, e := range p.got {
				if e.Match != nil {
					strangerMatched++
					t.Logf("stranger %s matched as %s", p.Identity, e.Match.PersonID)
				}
			}
		}
	}
	for _, e := range events {
		who := ""
		if e.Match != nil {
			who = fmt.Sprintf("%s%s d=%.2f m=%.2f", e.Match.PersonID, e.Match.Plate, e.Match.Distance, e.Match.Margin)
		}
		if e.Plate != nil {
			who += " read " + e.Plate.Text
		}
		t.Logf("event %s %s track %d first %s shot %s frames %d q=%.2f box=%.0fx%.0f %s", e.Camera, e.Kind, e.Track,
			e.First.Sub(start).Round(time.Millisecond), e.Time.Sub(start).Round(time.Millisecond), e.Frames, e.Quality, e.Box.W, e.Box.H, who)
	}
	for _, p := range ps {
		t.Logf("truth %s %s%s %s–%s", p.Camera, p.Identity, p.Plate, p.Enter.Sub(start).Round(time.Millisecond), p.Leave.Sub(start).Round(time.Millisecond))
	}
	var unexplained int
	for _, e := range events {
		// Passages already in view when a camera started, or cut off at the end, have no truth line.
		if !used[e] && e.First.After(start.Add(2*time.Second)) && e.First.Before(closed.Add(-3*time.Second)) {
			unexplained++
			name := ""
			if e.Match != nil {
				name = e.Match.PersonID
			}
			t.Logf("event without a passage: %s %s at %s match=%q", e.Camera, e.Kind, e.First.Sub(start).Round(time.Millisecond), name)
		}
	}
	recall := float64(rightID) / float64(max(1, enrolledPassages))
	precision := float64(rightID) / float64(max(1, rightID+wrongID))
	t.Logf("passages %d (enrolled %d, plates %d), events %d: identity recall %.3f precision %.3f, strangers matched %d, plates read %d/%d, passages with >1 event %d, events without a passage %d",
		len(ps), enrolledPassages, plates, len(events), recall, precision, strangerMatched, platesRead, plates, dup, unexplained)
	if enrolledPassages == 0 || plates == 0 {
		t.Fatal("the scenario produced no ground truth")
	}
	maxDup := 0
	if overloaded {
		maxDup = len(ps) / 4
	}
	if recall < 0.95 || precision < 0.95 || strangerMatched > 0 || platesRead < plates || dup > maxDup || unexplained > 0 {
		t.Errorf("accuracy below the bar")
	}
}

func testutilValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
