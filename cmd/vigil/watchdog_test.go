package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// TestWatchdog: a camera not seen live for 10 s (its state changes with every reconnection try)
// raises camera_offline once, and again only after it was live in between; a live camera whose newest segment is older than three segments and 30 s
// raises recording_stopped once; a camera the node just took over is not offline at once.
func TestWatchdog(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	var sts []rtsp.Status
	var raised []string
	last := map[string]time.Time{}
	w := &watchdog{offline: map[string]bool{}, stopped: map[string]bool{}, seen: map[string]time.Time{}, lastLive: map[string]time.Time{}, recAsked: map[string]time.Time{}, segLen: 10 * time.Second,
		statuses: func() []rtsp.Status { return sts }, raise: func(a access.Alarm) { raised = append(raised, a.Type+":"+a.Camera) },
		lastSeg: func(_ context.Context, c string) (time.Time, bool) { return last[c], true }}
	status := func(id string, state rtsp.State, since time.Time) rtsp.Status {
		return rtsp.Status{ID: id, State: state, Since: since}
	}
	ctx := context.Background()
	sts = []rtsp.Status{status("a", rtsp.StateLive, t0), status("b", rtsp.StateBackoff, t0.Add(-time.Hour))}
	w.check(ctx, t0) // b has been down an hour, but this node first sees it now
	if len(raised) != 0 {
		t.Fatalf("raised at once: %v", raised)
	}
	w.check(ctx, t0.Add(4*time.Second)) // a still live
	sts[0] = status("a", rtsp.StateBackoff, t0.Add(5*time.Second))
	w.check(ctx, t0.Add(12*time.Second))
	if strings.Join(raised, ",") != "camera_offline:b" {
		t.Fatalf("after 12 s: %v", raised)
	}
	w.check(ctx, t0.Add(16*time.Second))
	w.check(ctx, t0.Add(30*time.Second))
	if strings.Join(raised, ",") != "camera_offline:b,camera_offline:a" {
		t.Fatalf("after 30 s: %v (each once)", raised)
	}
	sts[0] = status("a", rtsp.StateLive, t0.Add(31*time.Second))
	w.check(ctx, t0.Add(32*time.Second))
	sts[0] = status("a", rtsp.StateBackoff, t0.Add(33*time.Second))
	w.check(ctx, t0.Add(44*time.Second))
	if len(raised) != 3 || raised[2] != "camera_offline:a" {
		t.Fatalf("down again after being live: %v", raised)
	}
	// Recording: live since t0+50 s, segments up to t0+60 s, then none.
	raised = nil
	sts = []rtsp.Status{status("a", rtsp.StateLive, t0.Add(50*time.Second))}
	last["a"] = t0.Add(60 * time.Second)
	w.check(ctx, t0.Add(100*time.Second)) // 40 s since the last segment: within 3 × 10 s + 30 s
	if len(raised) != 0 {
		t.Fatalf("recording raised early: %v", raised)
	}
	w.check(ctx, t0.Add(125*time.Second))
	w.check(ctx, t0.Add(130*time.Second))
	if strings.Join(raised, ",") != "recording_stopped:a" {
		t.Fatalf("recording stopped: %v", raised)
	}
}

// TestCameraOfflineAlarm: cameras that stop (camsim closed) are in the alert history as
// camera_offline alarms within 15 s.
func TestCameraOfflineAlarm(t *testing.T) {
	td := testenv.Testdata(t)
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data := t.TempDir()
	_, out, _ := runCmd("token", "create", "--role", "operator", "--name", "police post 1", "--data", data)
	op := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	lib, _ := camsim.LoadLibrary(td)
	clip, err := camsim.SmallClip(context.Background(), lib)
	if err != nil {
		t.Fatal(err)
	}
	simAddr := freeAddrT(t)
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: simAddr, Cameras: 2}, []*camsim.Clip{clip}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Live.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{"rtsp://" + simAddr + "/cam/001", "rtsp://" + simAddr + "/cam/002"})
	n := startNode(t, cfg)
	defer n.Stop()
	alarms := func() (out []string) {
		r, err := op.Get(n.URL + "/v1/alerts?state=open")
		if err != nil {
			return nil
		}
		defer r.Body.Close()
		var res struct {
			Alerts []struct {
				Camera, Kind string
				Attrs        struct{ Alarm struct{ Type string } }
			}
		}
		json.NewDecoder(r.Body).Decode(&res)
		for _, a := range res.Alerts {
			if a.Kind == "alarm" {
				out = append(out, a.Attrs.Alarm.Type+":"+a.Camera)
			}
		}
		return out
	}
	live := func() int {
		r, err := op.Get(n.URL + "/v1/cameras")
		if err != nil {
			return 0
		}
		defer r.Body.Close()
		var res struct{ Cameras []struct{ State string } }
		json.NewDecoder(r.Body).Decode(&res)
		k := 0
		for _, c := range res.Cameras {
			if c.State == "live" {
				k++
			}
		}
		return k
	}
	for end := time.Now().Add(20 * time.Second); live() < 2; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the cameras never went live")
		}
	}
	sim.Close()
	stopped := time.Now()
	var got []string
	for time.Since(stopped) < 15*time.Second && len(got) < 2 {
		time.Sleep(500 * time.Millisecond)
		got = alarms()
	}
	if strings.Join(got, ",") != "camera_offline:cam002,camera_offline:cam001" && strings.Join(got, ",") != "camera_offline:cam001,camera_offline:cam002" {
		t.Fatalf("alarms %v %v after the cameras stopped, want both cameras offline within 15 s", got, time.Since(stopped).Round(time.Second))
	}
	t.Logf("both cameras offline in the alert history %v after they stopped", time.Since(stopped).Round(100*time.Millisecond))
}
