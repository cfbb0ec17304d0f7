// Command camsim is a simulated camera fleet: an RTSP server publishing N H.264 cameras at
// rtsp://ADDR/cam/NNN, rendered from scripted scenes (people from the test photo set walking past,
// cars carrying plates, empty periods), each clip encoded once and replayed with fresh timestamps.
// It writes a ground-truth JSON line for every passage.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/paths"
)

// scenario is the --scenario file: clip length and, per clip variant, its events.
type scenario struct {
	Seconds float64 `yaml:"seconds"`
	Clips   []struct {
		Events []camsim.Event `yaml:"events"`
	} `yaml:"clips"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "camsim:", err)
		os.Exit(1)
	}
}

func run() error {
	p := camsim.DefaultParams()
	cameras := flag.Int("cameras", 4, "number of cameras")
	addr := flag.String("rtsp", "127.0.0.1:8554", "RTSP listen address")
	udp := flag.String("udp", "127.0.0.1:8000", "UDP RTP port address (RTCP uses the next port); empty disables UDP")
	flag.IntVar(&p.Width, "width", p.Width, "picture width")
	flag.IntVar(&p.Height, "height", p.Height, "picture height")
	flag.IntVar(&p.FPS, "fps", p.FPS, "frames per second")
	flag.Float64Var(&p.GOP, "gop", p.GOP, "seconds between key frames")
	flag.IntVar(&p.Bitrate, "bitrate", p.Bitrate, "kbit/s")
	flag.Float64Var(&p.Seconds, "seconds", p.Seconds, "clip length before it loops")
	variants := flag.Int("clips", 4, "distinct clips; camera i plays clip i mod N")
	scenarioFile := flag.String("scenario", "", "YAML scenario (seconds, clips[].events[]); default: generated from --seed")
	seed := flag.Uint64("seed", 1, "seed for generated scenes and camera offsets")
	testdata := flag.String("testdata", paths.Shared("testdata"), "test photo set (labels.csv, faces/, plates/)")
	truthFile := flag.String("truth", "camsim-truth.jsonl", "ground-truth output (JSON lines)")
	cache := flag.String("cache", defaultCache(), "encoded clip cache")
	user := flag.String("user", "", "require this RTSP user")
	pass := flag.String("pass", "", "and password")
	stamp := flag.Bool("timestamps", false, "an SEI message with the send time in front of every frame (latency benches)")
	substream := flag.String("substream", "", "also serve each camera's sub-stream, the same scene at WxH (e.g. 640x360), at rtsp://ADDR/cam/NNN/sub")
	subBitrate := flag.Int("sub-bitrate", 400, "sub-stream kbit/s")
	subGOP := flag.Float64("sub-gop", 1, "sub-stream seconds between key frames")
	activity := flag.String("activity", "busy", "busy: looped scenes where someone always passes; site: the site's load model (street, door and gate cameras in the site's mix, passages at the hour's rate)")
	peak := flag.Bool("peak", false, "with --activity site: hold the peak hour")
	hour := flag.Float64("hour", float64(time.Now().Hour()), "with --activity site: the site's hour of day when camsim starts")
	passages := flag.Int("passages", 12, "with --activity site: passage clips per scene and look")
	inStep := flag.Bool("in-step", false, "send every camera's frame at the same instant of the frame interval (by default each camera has its own phase, as free-running cameras do)")
	flag.Parse()
	var err error
	if p.Sub, err = camsim.ParseSub(*substream); err != nil {
		return err
	}
	if p.Sub != nil {
		p.Sub.Bitrate, p.Sub.GOP = *subBitrate, *subGOP
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lib, err := camsim.LoadLibrary(*testdata)
	if err != nil {
		return err
	}
	var site *camsim.Site
	switch *activity {
	case "busy":
	case "site":
		if *scenarioFile != "" {
			return fmt.Errorf("--scenario and --activity site exclude each other")
		}
		if site, err = buildSite(ctx, lib, p, *cameras, *seed, *cache, camsim.Activity{Hour: *hour, Peak: *peak}, *passages, log); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--activity %q: busy or site", *activity)
	}
	var scripts [][]camsim.Event
	if site == nil {
		if scripts, err = loadScripts(lib, *scenarioFile, *variants, *seed, &p); err != nil {
			return err
		}
	}
	var clips []*camsim.Clip
	for i, evs := range scripts {
		t0 := time.Now()
		c, err := camsim.BuildClip(ctx, lib, p, evs, *seed+uint64(i), *cache)
		if err != nil {
			return err
		}
		log.Info("clip ready", "clip", i+1, "of", len(scripts), "frames", len(c.Units), "events", len(c.Events), "took", time.Since(t0).Round(time.Millisecond))
		clips = append(clips, c)
	}
	tf, err := os.Create(*truthFile)
	if err != nil {
		return err
	}
	defer tf.Close()
	truth := camsim.NewTruthWriter(tf)
	defer truth.Flush()
	cfg := camsim.Config{RTSPAddress: *addr, Cameras: *cameras, User: *user, Pass: *pass, Seed: *seed, Truth: truth, Timestamps: *stamp, Site: site, InStep: *inStep}
	if *udp != "" {
		h, port, err := splitPort(*udp)
		if err != nil {
			return err
		}
		cfg.UDPRTPAddress, cfg.UDPRTCPAddress = fmt.Sprintf("%s:%d", h, port), fmt.Sprintf("%s:%d", h, port+1)
	}
	srv, err := camsim.NewServer(cfg, clips, log)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("camsim: %d cameras at rtsp://%s/cam/001 … /cam/%03d; truth in %s\n", *cameras, *addr, *cameras, *truthFile)
	if p.Sub != nil {
		fmt.Printf("camsim: sub-streams (%dx%d) at rtsp://%s/cam/001/sub … /cam/%03d/sub\n", p.Sub.Width, p.Sub.Height, *addr, *cameras)
	}
	<-ctx.Done()
	log.Info("stopping", "truth_lines", truth.Lines())
	return nil
}

// buildSite renders the site's clips for the scenes n cameras have and says which camera is which.
func buildSite(ctx context.Context, lib *camsim.Library, p camsim.Params, n int, seed uint64, cache string, act camsim.Activity, passages int, log *slog.Logger) (*camsim.Site, error) {
	scenes := camsim.SiteScenes(n)
	t0 := time.Now()
	p.Seconds = 4
	clips, err := camsim.BuildSite(ctx, lib, scenes, camsim.SiteOptions{Params: p, Passages: passages, Seed: seed, Cache: cache},
		func(scene string, done, total int) {
			if done == total || done%8 == 0 {
				log.Info("site clips", "scene", scene, "done", done, "of", total)
			}
		})
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, s := range scenes {
		count[s]++
	}
	hour := fmt.Sprintf("from %02.0f:00", act.Hour)
	if act.Peak {
		hour = fmt.Sprintf("held at the peak hour (%02d:00)", camsim.PeakHour())
	}
	fmt.Printf("camsim: site activity %s: %d street, %d door, %d gate cameras (gate cameras first); clips ready in %v\n",
		hour, count[camsim.PlaceStreet], count[camsim.PlaceDoor], count[camsim.PlaceGate], time.Since(t0).Round(time.Millisecond))
	return &camsim.Site{Scenes: scenes, Clips: clips, Activity: act}, nil
}

func splitPort(a string) (string, int, error) {
	var h string
	var p int
	i := len(a) - 1
	for i >= 0 && a[i] != ':' {
		i--
	}
	if i < 0 {
		return "", 0, fmt.Errorf("--udp %q is not host:port", a)
	}
	h = a[:i]
	if _, err := fmt.Sscanf(a[i+1:], "%d", &p); err != nil || p%2 != 0 {
		return "", 0, fmt.Errorf("--udp %q: port must be an even number", a)
	}
	return h, p, nil
}

func defaultCache() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "vigil", "camsim")
	}
	return ""
}

func loadScripts(lib *camsim.Library, file string, variants int, seed uint64, p *camsim.Params) ([][]camsim.Event, error) {
	if file == "" {
		if variants < 1 {
			return nil, fmt.Errorf("--clips must be at least 1")
		}
		out := make([][]camsim.Event, variants)
		for i := range out {
			out[i] = lib.Script(seed+uint64(i), p.Seconds)
		}
		return out, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var sc scenario
	if err := yaml.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if sc.Seconds > 0 {
		p.Seconds = sc.Seconds
	}
	if len(sc.Clips) == 0 {
		return nil, fmt.Errorf("%s: no clips", file)
	}
	var out [][]camsim.Event
	for ci, c := range sc.Clips {
		for ei := range c.Events {
			if err := lib.Resolve(&c.Events[ei]); err != nil {
				return nil, fmt.Errorf("%s: clips[%d].events[%d]: %w", file, ci, ei, err)
			}
		}
		out = append(out, c.Events)
	}
	return out, nil
}
