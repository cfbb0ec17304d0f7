package camsim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/decode"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

func testLibrary(t testing.TB) *Library {
	t.Helper()
	dir := testenv.Testdata(t)
	lib, err := LoadLibrary(dir)
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func smallParams() Params {
	return Params{Width: 640, Height: 360, FPS: 25, GOP: 1, Bitrate: 600, Seconds: 6}
}

func TestScriptIsDeterministicAndRealistic(t *testing.T) {
	lib := testLibrary(t)
	a, b := lib.Script(7, 60), lib.Script(7, 60)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatal("same seed gave different scripts")
	}
	faces, plates := 0, 0
	for _, e := range a {
		switch e.Kind {
		case "face":
			faces++
			if e.Size < 40 || e.Size > 200 {
				t.Errorf("face size %d outside 40..200", e.Size)
			}
		case "plate":
			plates++
			if e.Size < 80 || e.Size > 200 {
				t.Errorf("plate width %d outside 80..200", e.Size)
			}
		}
		if e.Start+e.Duration > 60 {
			t.Errorf("event overruns the clip: %+v", e)
		}
	}
	if faces == 0 || plates == 0 {
		t.Fatalf("60 s script has %d faces and %d plates", faces, plates)
	}
}

func TestBuildClipEncodesAndCaches(t *testing.T) {
	lib := testLibrary(t)
	p := smallParams()
	evs := []Event{
		{Kind: "face", Identity: "obama", Photo: lib.Faces["obama"][0], Start: 0.5, Duration: 3, Size: 120, Y: 0.4},
		{Kind: "plate", Plate: lib.Plates[0].Text, Image: lib.Plates[0].Image, Start: 3, Duration: 2.5, Size: 160, Y: 0.7},
	}
	cache := t.TempDir()
	t0 := time.Now()
	c, err := BuildClip(context.Background(), lib, p, evs, 1, cache)
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(t0)
	if len(c.Units) != 150 {
		t.Fatalf("%d frames, want 150", len(c.Units))
	}
	keys := 0
	for i, u := range c.Units {
		if isIDR(u) {
			keys++
			if i%25 != 0 {
				t.Errorf("key frame at %d, want every 25", i)
			}
		}
	}
	if keys != 6 {
		t.Fatalf("%d key frames, want 6", keys)
	}
	for _, e := range c.Events {
		if !(e.Start < e.Enter && e.Enter < e.Leave && e.Leave < e.Start+e.Duration) {
			t.Errorf("visibility window wrong: %+v", e)
		}
	}
	t1 := time.Now()
	c2, err := BuildClip(context.Background(), lib, p, evs, 1, cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Units) != len(c.Units) || !bytes.Equal(c2.SPS, c.SPS) || len(c2.Events) != 2 || c2.Events[0].Enter != c.Events[0].Enter {
		t.Fatal("cached clip differs")
	}
	t.Logf("encode %v, cached load %v", cold, time.Since(t1))

	if _, err := BuildClip(context.Background(), lib, p, []Event{{Kind: "face", Photo: "faces/nobody/1.jpg", Start: 1, Duration: 2, Size: 50}}, 1, ""); err == nil {
		t.Fatal("missing photo accepted")
	}
	bad := p
	bad.Width = 641
	if _, err := BuildClip(context.Background(), lib, bad, nil, 1, ""); err == nil || !strings.Contains(err.Error(), "even") {
		t.Fatalf("odd width: %v", err)
	}
}

func isIDR(au [][]byte) bool {
	for _, n := range au {
		if n[0]&0x1f == 5 {
			return true
		}
	}
	return false
}

// TestFFprobeReadsCamsim checks interoperability: ffprobe, a stock client, reads a camera.
func TestFFprobeReadsCamsim(t *testing.T) {
	testenv.Command(t, "ffprobe")
	lib := testLibrary(t)
	c, err := BuildClip(context.Background(), lib, smallParams(), lib.Script(3, 6), 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var truth bytes.Buffer
	tw := NewTruthWriter(&truth)
	srv, err := NewServer(Config{RTSPAddress: "127.0.0.1:18554", Cameras: 3, Truth: tw}, []*Clip{c}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// JSON on stdout; stderr may carry decoder notes about frames before the first key frame
	// (ffprobe joins mid-GOP, as with any live camera).
	var stderr bytes.Buffer
	probeCmd := exec.Command("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,avg_frame_rate", "-of", "json", "rtsp://127.0.0.1:18554/cam/002")
	probeCmd.Stderr = &stderr
	out, err := probeCmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s%s", err, out, stderr.Bytes())
	}
	var probe struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(probe.Streams) != 1 || probe.Streams[0].Codec != "h264" || probe.Streams[0].Width != 640 || probe.Streams[0].Height != 360 {
		t.Fatalf("ffprobe saw %s", out)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "rtsp://127.0.0.1:18554/cam/009").CombinedOutput()
	if err == nil {
		t.Fatalf("ffprobe read a camera that does not exist: %s", out)
	}
}

// TestGroundTruth replays a scripted clip on two cameras for one loop and checks every passage
// was written once per camera with its visibility window.
func TestGroundTruth(t *testing.T) {
	lib := testLibrary(t)
	p := Params{Width: 320, Height: 240, FPS: 25, GOP: 1, Bitrate: 300, Seconds: 3}
	evs := []Event{{Kind: "face", Identity: "biden", Start: 0.1, Duration: 2, Size: 50}, {Kind: "plate", Plate: "京AF0236", Start: 1, Duration: 1.5}}
	for i := range evs {
		if err := lib.Resolve(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	c, err := BuildClip(context.Background(), lib, p, evs, 9, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := NewTruthWriter(&buf)
	srv, err := NewServer(Config{RTSPAddress: "127.0.0.1:18557", Cameras: 2, Truth: tw, Seed: 4}, []*Clip{c}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3200 * time.Millisecond) // one loop and a bit
	srv.Close()
	tw.Flush()
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var tl TruthLine
		if err := json.Unmarshal([]byte(l), &tl); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		who := tl.Identity + tl.Plate
		seen[tl.Camera+" "+who]++
		want := c.Events[0]
		if tl.Kind == "plate" {
			want = c.Events[1]
		}
		if d := tl.Leave.Sub(tl.Enter).Seconds() - (want.Leave - want.Enter); d > 0.01 || d < -0.01 {
			t.Errorf("%s window %.2fs, script says %.2fs", who, tl.Leave.Sub(tl.Enter).Seconds(), want.Leave-want.Enter)
		}
		if tl.Path != "/cam/"+strings.TrimPrefix(tl.Camera, "cam") {
			t.Errorf("camera %q path %q", tl.Camera, tl.Path)
		}
	}
	for _, k := range []string{"cam001 biden", "cam001 京AF0236", "cam002 biden", "cam002 京AF0236"} {
		if n := seen[k]; n < 1 || n > 2 {
			t.Errorf("%s written %d times in one loop", k, n)
		}
	}
}

// TestTimeSEIRoundTrip: send times survive emulation prevention, including times whose bytes
// hold 00 00 0x runs.
func TestTimeSEIRoundTrip(t *testing.T) {
	for _, ns := range []int64{time.Now().UnixNano(), 0x0000_0001_0000_0300, 0x1800_0000_0000_0000, 1} {
		tm := time.Unix(0, ns)
		n := TimeSEI(tm)
		for i := 2; i < len(n); i++ {
			if n[i-2] == 0 && n[i-1] == 0 && n[i] <= 2 {
				t.Fatalf("%x: start-code emulation at %d: % x", ns, i, n)
			}
		}
		got, ok := ParseTimeSEI(n)
		if !ok || !got.Equal(tm) {
			t.Fatalf("%x: got %v %v", ns, got, ok)
		}
	}
	if _, ok := ParseTimeSEI([]byte{0x06, 5, 3, 1, 2, 3}); ok {
		t.Fatal("foreign SEI parsed")
	}
}

// TestSubStream: --substream serves a second, smaller stream of the same scene, frame for frame
// in step with the main, with its own key frame interval, at /cam/NNN/sub.
func TestSubStream(t *testing.T) {
	testenv.Command(t, "ffprobe")
	lib := testLibrary(t)
	p := smallParams()
	p.Sub = &SubParams{Width: 320, Height: 180, GOP: 0.4, Bitrate: 200}
	c, err := BuildClip(context.Background(), lib, p, lib.Script(3, 6), 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.Sub == nil || len(c.Sub.Units) != len(c.Units) || len(c.Units) != 150 {
		t.Fatalf("main %d frames, sub %v", len(c.Units), c.Sub != nil)
	}
	for i, u := range c.Sub.Units {
		if isIDR(u) != (i%10 == 0) {
			t.Fatalf("sub-stream frame %d: key %v, want a key frame every 10", i, isIDR(u))
		}
	}
	srv, err := NewServer(Config{RTSPAddress: "127.0.0.1:18559", Cameras: 2}, []*Clip{c}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for path, want := range map[string]string{"/cam/002": "640x360", "/cam/002/sub": "320x180"} {
		out, err := exec.Command("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
			"-show_entries", "stream=width,height", "-of", "csv=p=0:s=x", "rtsp://127.0.0.1:18559"+path).Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%s: %q, %v; want %s", path, out, err, want)
		}
	}
	if out, err := exec.Command("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "rtsp://127.0.0.1:18559/cam/002/sub2").CombinedOutput(); err == nil {
		t.Fatalf("ffprobe read a path that does not exist: %s", out)
	}
	bad := p
	bad.Sub = &SubParams{Width: 1280, Height: 720, GOP: 1, Bitrate: 200}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "no larger") {
		t.Fatalf("sub-stream larger than the main: %v", err)
	}
	if _, err := ParseSub("640x"); err == nil {
		t.Fatal("640x accepted")
	}
}

// TestSiteLoadModel: the rates add up to the site's day, the peak hour is ten times the mean,
// nights are empty, the camera mix is the reference site's, and a camera held at the peak hour
// plays passages at the peak rate.
func TestSiteLoadModel(t *testing.T) {
	for scene, daily := range DailyPassages {
		var sum, peak float64
		for h := 0; h < 24; h++ {
			r := HourlyRate(scene, h)
			sum += r
			peak = max(peak, r)
		}
		if d := sum - daily; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: %.1f passages a day, want %.0f", scene, sum, daily)
		}
		if ratio := peak / (daily / 24); ratio < 9.5 || ratio > 10.5 {
			t.Errorf("%s: peak hour %.1f× the mean", scene, ratio)
		}
		if HourlyRate(scene, 3) > peak/100 || HourlyRate(scene, PeakHour()) != peak {
			t.Errorf("%s: night %.2f/h against peak %.1f/h", scene, HourlyRate(scene, 3), peak)
		}
	}
	count := func(s []string) map[string]int {
		m := map[string]int{}
		for _, x := range s {
			m[x]++
		}
		return m
	}
	if m := count(SiteScenes(1231)); m[PlaceStreet] != 625 || m[PlaceDoor] != 600 || m[PlaceGate] != 6 {
		t.Errorf("1,231 cameras: %v", m)
	}
	if s := SiteScenes(20); s[0] != PlaceGate || count(s)[PlaceGate] != 1 || count(s)[PlaceStreet] < 9 {
		t.Errorf("20 cameras: %v", s)
	}
	// A street camera at the peak hour, clips of 4 s: a passage starts in 6.5% of them.
	mk := func() *packetClip {
		return &packetClip{frames: make([][]*rtp.Packet, 100), clip: &Clip{Params: Params{FPS: 25}}}
	}
	ps := &packetScene{idle: []*packetClip{mk(), mk(), mk(), mk()}, passages: []*packetClip{mk()}, groups: []*packetClip{mk()}}
	plan := &sitePlan{scene: PlaceStreet, clips: ps, rng: rand.New(rand.NewPCG(1, 1)), act: Activity{Peak: true}, start: time.Now(), played: map[string]int{}}
	const clips = 20000
	for i := 0; i < clips; i++ {
		plan.next(time.Now())
	}
	perHour := float64(plan.played["passage"]+2*plan.played["group"]) / (clips * 4 / 3600.0)
	if want := HourlyRate(PlaceStreet, PeakHour()); perHour < 0.9*want || perHour > 1.1*want {
		t.Errorf("peak hour: %.1f people an hour, want %.1f (%v)", perHour, want, plan.played)
	}
	night := &sitePlan{scene: PlaceStreet, clips: ps, rng: rand.New(rand.NewPCG(1, 1)), act: Activity{Hour: 3}, start: time.Now(), played: map[string]int{}}
	for i := 0; i < clips; i++ {
		night.next(time.Now())
	}
	if night.played["passage"] > clips/500 {
		t.Errorf("night: %v", night.played)
	}
}

// TestSiteActivity: --activity site plays each camera's scene clip after clip (idle ones and
// passages, joined at key frames in both streams), so a decoder reads the streams without an
// error, and writes ground truth for the passages with their scene.
func TestSiteActivity(t *testing.T) {
	lib := testLibrary(t)
	p := Params{Width: 640, Height: 360, FPS: 10, GOP: 1, Bitrate: 500, Seconds: 2, Sub: &SubParams{Width: 320, Height: 180, GOP: 0.5, Bitrate: 150}}
	scenes := SiteScenes(3)
	clips, err := BuildSite(context.Background(), lib, scenes, SiteOptions{Params: p, Variants: 1, Passages: 2, Seed: 5, Cache: os.TempDir() + "/vigil-test-clips"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{PlaceGate, PlaceStreet, PlaceDoor} {
		sc := clips[s][0]
		if len(sc.Idle) < 3 || len(sc.Passages) != 2 || (s == PlaceStreet) != (len(sc.Groups) > 0) {
			t.Fatalf("%s: %d idle, %d passages, %d groups", s, len(sc.Idle), len(sc.Passages), len(sc.Groups))
		}
	}
	var truth bytes.Buffer
	tw := NewTruthWriter(&truth)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := "127.0.0.1:18561"
	srv, err := NewServer(Config{RTSPAddress: addr, Cameras: 3, Truth: tw, Site: &Site{Scenes: scenes, Clips: clips, Activity: Activity{Peak: true, Boost: 60}}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	pool := rtsp.NewPool(log)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	results := make([]string, 0, 6)
	var mu sync.Mutex
	for i := 1; i <= 3; i++ {
		for _, path := range []string{CameraPath(i), SubPath(i)} {
			s, err := pool.Add(rtsp.Config{ID: path, URL: "rtsp://" + addr + path})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				frames, errs := decodeAll(ctx, s.Stream())
				mu.Lock()
				results = append(results, fmt.Sprintf("%s %d %d", path, frames, errs))
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	pool.Close()
	srv.Close()
	tw.Flush()
	for _, r := range results {
		var path string
		var frames, errs int
		fmt.Sscanf(r, "%s %d %d", &path, &frames, &errs)
		if frames < 50 || errs > 0 {
			t.Errorf("%s: %d frames decoded, %d errors", path, frames, errs)
		}
	}
	kinds := map[string]string{PlaceGate: "plate", PlaceStreet: "face", PlaceDoor: "face"}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(truth.String()), "\n") {
		var tl TruthLine
		if err := json.Unmarshal([]byte(l), &tl); err != nil {
			t.Fatalf("%v: %q", err, l)
		}
		if tl.Scene != scenes[map[string]int{"cam001": 0, "cam002": 1, "cam003": 2}[tl.Camera]] || kinds[tl.Scene] != tl.Kind {
			t.Errorf("truth %+v", tl)
		}
		seen[tl.Scene]++
	}
	if seen[PlaceGate] == 0 || seen[PlaceStreet] == 0 || seen[PlaceDoor] == 0 {
		t.Fatalf("passages by scene %v", seen)
	}
	t.Logf("passages by scene %v; streams %v", seen, results)
}

// decodeAll decodes every unit of s until ctx ends: pictures and decoder errors.
func decodeAll(ctx context.Context, s *streams.Stream) (frames, errs int) {
	r := s.NewReader("test", 256)
	defer r.Close()
	var d *decode.Decoder
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	for {
		u, err := r.Read(ctx)
		if err != nil {
			return
		}
		if d == nil {
			if d, err = decode.New(u.Codec, decode.Options{Mode: decode.All}); err != nil {
				return 0, 1
			}
		}
		f, err := d.Decode(u)
		if err != nil {
			errs++
		} else if f != nil {
			frames++
		}
	}
}

// Cameras run on their own clocks: each sends its frames at its own phase of the frame
// interval, spread so that no tenth of the interval is without a camera's frames; --in-step
// puts them all at its start.
func TestCameraPhasesSpread(t *testing.T) {
	lib := testLibrary(t)
	c, err := BuildClip(context.Background(), lib, Params{Width: 160, Height: 120, FPS: 25, GOP: 1, Bitrate: 100, Seconds: 1}, nil, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, inStep := range []bool{false, true} {
		srv, err := NewServer(Config{Cameras: 20, InStep: inStep}, []*Clip{c}, log)
		if err != nil {
			t.Fatal(err)
		}
		for shard := 0; shard < 2; shard++ {
			var slots [phaseSlots]int
			for i := shard; i < len(srv.cams); i += 2 {
				slots[int(srv.cams[i].phase*phaseSlots)]++
			}
			for k, n := range slots {
				if inStep && k > 0 && n != 0 || !inStep && n == 0 {
					t.Errorf("in step %v, shard %d: cameras per tenth of the interval %v", inStep, shard, slots)
					break
				}
			}
		}
	}
}
