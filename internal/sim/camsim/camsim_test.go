package camsim

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
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
