// Command unlock measures auto-unlock end to end: camsim door cameras show people walking past,
// vigil serve recognises the enrolled residents among them, decides, and queues unlocks that
// simulated controllers (internal/doorsim) receive on their long-poll channels. It prints the
// time from the arrival at vigil of the video that showed the person to the command's arrival at
// the controller, p50/p99.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
	"github.com/vigil-oss/vigil/internal/testkit/paths"
)

func main() {
	var o opts
	flag.IntVar(&o.cams, "cameras", 4, "door cameras (one door each)")
	flag.IntVar(&o.others, "others", 0, "street cameras (no door) analysed on the same node")
	flag.IntVar(&o.workers, "face-workers", 2, "face workers")
	compare := flag.Bool("compare", false, "run again with pipeline.door_priority off, as the reference")
	flag.DurationVar(&o.window, "window", 60*time.Second, "measured time")
	flag.StringVar(&o.vigil, "vigil", "bin/vigil", "vigil binary")
	flag.StringVar(&o.camsim, "camsim", "bin/camsim", "camsim binary")
	flag.Parse()
	o.priority = true
	runs := []opts{o}
	if *compare {
		o.priority = false
		runs = append(runs, o)
	}
	for _, o := range runs {
		if err := run(o); err != nil {
			fmt.Fprintln(os.Stderr, "unlock bench:", err)
			os.Exit(1)
		}
	}
}

type opts struct {
	cams, others, workers int
	priority              bool
	window                time.Duration
	vigil, camsim         string
}

func run(o opts) error {
	cams, window, vigil, camsim := o.cams, o.window, o.vigil, o.camsim
	ctx := context.Background()
	td := paths.Shared("testdata")
	if td == "" {
		return fmt.Errorf("needs ../shared/testdata")
	}
	bed, err := measure.NewBed(ctx, vigil, "unlock")
	if err != nil {
		return err
	}
	defer bed.Close()
	data, env, cli := bed.Data, bed.Env, bed.CLI
	token, err := cli("token", "create", "--role", "admin", "--name", "bench")
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	keys := map[string][]byte{}
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "http: {addr: 127.0.0.1:18994}\npipeline: {fps: 5, keyframes_only: false, face_workers: %d, plate_workers: 0, door_priority: %v}\nfootage: {enabled: false}\nlog: {level: warn}\ncameras:\n",
		o.workers, o.priority)
	for i := 1; i <= cams; i++ {
		door, cam := fmt.Sprintf("door-%d", i), fmt.Sprintf("cam%03d", i)
		out, err := cli("doors", "add", "--id", door, "--camera", cam)
		if err != nil {
			return fmt.Errorf("doors add: %w", err)
		}
		keys[door], _ = hex.DecodeString(out)
		fmt.Fprintf(&yaml, "  - {id: %s, url: rtsp://127.0.0.1:18600/cam/%03d, analyse: faces}\n", cam, i)
	}
	for i := cams + 1; i <= cams+o.others; i++ {
		fmt.Fprintf(&yaml, "  - {id: cam%03d, url: rtsp://127.0.0.1:18600/cam/%03d, analyse: faces}\n", i, i)
	}
	cfgPath := filepath.Join(data, "vigil.yaml")
	os.WriteFile(cfgPath, []byte(yaml.String()), 0o600)
	srv := exec.Command(vigil, "serve", "--config", cfgPath, "--data", data)
	srv.Env, srv.Stderr = env, os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	base := "http://127.0.0.1:18994"
	if err := measure.WaitReady(base, 2*time.Minute); err != nil {
		return err
	}
	api := func(path, ctype string, body []byte) (int, error) {
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ctype)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		r.Body.Close()
		return r.StatusCode, nil
	}
	// Every test identity becomes a resident of one unit (those the enrolment gate refuses walk
	// past as strangers).
	api("/v1/units", "application/json", []byte(`{"id":"u1"}`))
	dirs, _ := os.ReadDir(filepath.Join(td, "faces"))
	enrolled := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		id := d.Name()
		api("/v1/people", "application/json", []byte(fmt.Sprintf(`{"id":%q,"name":%q,"kind":"resident"}`, id, id)))
		api("/v1/people/"+id+"/leases", "application/json", []byte(fmt.Sprintf(`{"unit":"u1","starts":%q,"ends":%q}`,
			time.Now().AddDate(0, -1, 0).Format(time.RFC3339), time.Now().AddDate(1, 0, 0).Format(time.RFC3339))))
		api("/v1/people/"+id+"/credentials", "application/json", []byte(fmt.Sprintf(`{"kind":"card","value":"CARD-%s"}`, id)))
		img, err := os.ReadFile(filepath.Join(td, "faces", id, "2.jpg"))
		if err != nil {
			continue
		}
		var mb bytes.Buffer
		mw := multipart.NewWriter(&mb)
		mw.WriteField("consent", "bench")
		fw, _ := mw.CreateFormFile("image", "2.jpg")
		fw.Write(img)
		mw.Close()
		if code, _ := api("/v1/people/"+id+"/faces", mw.FormDataContentType(), mb.Bytes()); code == 201 {
			enrolled++
		}
	}
	for door := range keys {
		api("/v1/doors/"+door+"/rules", "application/json", []byte(`{"who_kind":"unit","who":"u1"}`))
	}
	var mu sync.Mutex
	var lat []time.Duration
	var warm time.Time // unlocks of video that arrived before this (the models' first inferences) are not counted
	warmups := 0
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for door, key := range keys {
		c := doorsim.New(base, door, key)
		c.OnUnlock = func(cmd access.Command) {
			if !cmd.Arrival.IsZero() {
				mu.Lock()
				if cmd.Arrival.Before(warm) {
					warmups++
				} else {
					lat = append(lat, time.Since(cmd.Arrival))
				}
				mu.Unlock()
			}
		}
		wg.Go(func() { c.Run(cctx, 10*time.Second) })
	}
	mu.Lock()
	warm = time.Now().Add(15 * time.Second)
	mu.Unlock()
	sim := exec.Command(camsim, "--cameras", fmt.Sprint(cams+o.others), "--rtsp", "127.0.0.1:18600", "--udp", "", "--seed", "3",
		"--truth", filepath.Join(data, "truth.jsonl"))
	sim.Stderr = nil
	if err := sim.Start(); err != nil {
		return err
	}
	defer func() { _ = sim.Process.Signal(os.Interrupt); _ = sim.Wait() }()
	time.Sleep(window)
	cancel()
	wg.Wait()
	if len(lat) == 0 {
		return fmt.Errorf("no unlock reached a controller in %v (%d residents enrolled)", window, enrolled)
	}
	slices.Sort(lat)
	prio := "door priority on"
	if !o.priority {
		prio = "door priority OFF"
	}
	fmt.Printf("auto-unlock, %d door cameras + %d street cameras at 5 fps, %d face workers, %s, %d residents enrolled, %v: %d unlocks measured (%d in the first 15 s, models warming up, not counted); deciding frame's arrival → command at the controller p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		cams, o.others, o.workers, prio, enrolled, window, len(lat), warmups, ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
