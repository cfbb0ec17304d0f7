package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/paths"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// cmdDemo runs a simulated camera fleet and a vigil node pulling it, on embedded defaults.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	n := fs.Int("cameras", 8, "simulated cameras")
	fps := fs.Float64("fps", 1, "frames analysed per second per camera")
	httpAddr := fs.String("http", "127.0.0.1:8080", "API address")
	rtspAddr := fs.String("rtsp", "127.0.0.1:8554", "simulated cameras' RTSP address")
	data := fs.String("data", envOr("VIGIL_DATA", "data"), "data directory (clip cache, later the database and footage)")
	testdata := fs.String("testdata", paths.Shared("testdata"), "test photo set (faces, plates)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := config.Default()
	cfg.HTTP.Addr = *httpAddr
	cfg.Data = *data
	cfg.Pipeline.Gallery = filepath.Join(*data, "gallery.json")
	cfg.Pipeline.FPS = *fps
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)

	lib, err := camsim.LoadLibrary(*testdata)
	if err != nil {
		return err
	}
	p := camsim.DefaultParams()
	// Every camera also serves a sub-stream, as real ones do; vigil analyses it (detect_url) and
	// takes its best shots from the 720p main stream, which it records.
	p.Sub = &camsim.SubParams{Width: 640, Height: 360, GOP: 1, Bitrate: 400}
	cache := filepath.Join(*data, "cache", "camsim")
	var clips []*camsim.Clip
	for v := uint64(0); v < 4; v++ {
		fmt.Fprintf(stdout, "preparing simulated scene %d/4 (encoded once, cached in %s)\n", v+1, cache)
		c, err := camsim.BuildClip(ctx, lib, p, lib.Script(v+1, p.Seconds), v+1, cache)
		if err != nil {
			return err
		}
		clips = append(clips, c)
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		return err
	}
	if err := demoGallery(lib, cfg.Pipeline.Gallery, stdout); err != nil {
		return err
	}
	tf, err := os.Create(filepath.Join(*data, "camsim-truth.jsonl"))
	if err != nil {
		return err
	}
	defer tf.Close()
	truth := camsim.NewTruthWriter(tf)
	defer truth.Flush()
	sim, err := camsim.NewServer(camsim.Config{RTSPAddress: *rtspAddr, Cameras: *n, Seed: 1, Truth: truth}, clips, log)
	if err != nil {
		return err
	}
	if err := sim.Start(); err != nil {
		return err
	}
	// The simulator is closed after vigil stops, so sessions end on our shutdown, not on a
	// vanished camera.
	defer sim.Close()
	cols := int(math.Ceil(math.Sqrt(float64(*n))))
	for i := 1; i <= *n; i++ {
		// Spread over the site map's grid until someone uploads a plan and drags them.
		at := [2]float64{(float64((i-1)%cols) + 0.5) / float64(cols), (float64((i-1)/cols) + 0.5) / float64(cols)}
		cfg.Cameras = append(cfg.Cameras, config.Camera{
			ID: fmt.Sprintf("cam%03d", i), URL: config.SecretURL("rtsp://" + *rtspAddr + camsim.CameraPath(i)),
			DetectURL: config.SecretURL("rtsp://" + *rtspAddr + camsim.SubPath(i)), Map: &at})
	}
	token, err := demoToken(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	doorKey, err := demoDoor(ctx, cfg, lib, stdout, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, func(addr string) {
		go runDemoController(ctx, "http://"+addr, doorKey, stdout)
		h := `-H "Authorization: Bearer ` + token + `"`
		now := time.Now().UTC()
		from, to := now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
		fmt.Fprintf(stdout, "\nvigil demo is running (Ctrl-C stops everything):\n"+
			"  console:  http://%s/  (sign in with the token below; live wall, alerts, map, search, doors)\n"+
			"  token:    %s  (admin; also in %s)\n"+
			"  patrol:   go run ./cmd/vigil token create --role patrol --name \"patrol 1\" --data %s  (then sign in on a phone-sized window)\n"+
			"  cameras:  curl %s http://%s/v1/cameras\n  metrics:  http://%s/metrics\n"+
			"  RTSP:     rtsp://%s/cam/001 … /cam/%03d (try: ffplay -rtsp_transport tcp rtsp://%s/cam/001); sub-streams at /cam/NNN/sub, analysed\n"+
			"  truth:    %s (who passed which camera, when)\n"+
			"  door:     %s on cam001 opens by face for the demo residents; each unlock prints here, and the console's Doors page shows it\n"+
			"  events:   curl -N %s http://%s/v1/events/live   (one event per passage, with identity)\n"+
			"  faces:    curl %s -F image=@../shared/testdata/faces/obama/1.jpg -F from=%s -F to=%s -F reason=demo http://%s/v1/search/faces\n"+
			"  plates:   curl %s 'http://%s/v1/search/plates?q=B123*&from=%s&to=%s&reason=demo'\n"+
			"  audit:    go run ./cmd/vigil audit verify --data %s\n\n",
			addr, token, filepath.Join(cfg.Data, "demo-token"), cfg.Data, h, addr, addr, *rtspAddr, *n, *rtspAddr, tf.Name(), demoDoorID, h, addr,
			h, from, to, addr, h, addr, from, to, cfg.Data)
	})
}

// demoToken returns the demo's admin token, made once and kept in DATA/demo-token (mode 0600).
func demoToken(ctx context.Context, cfg config.Config, stderr io.Writer) (string, error) {
	path := filepath.Join(cfg.Data, "demo-token")
	st, err := openToolStore(ctx, cfg, stderr)
	if err != nil {
		return "", err
	}
	defer st.Close()
	ps := auth.NewPrincipals(st.pool, 0)
	if b, err := os.ReadFile(path); err == nil {
		if _, err := ps.Authenticate(ctx, strings.TrimSpace(string(b))); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	_, token, err := ps.Create(ctx, "demo admin", auth.RoleAdmin)
	if err != nil {
		return "", err
	}
	return token, os.WriteFile(path, []byte(token+"\n"), 0o600)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// demoGallery enrols half the test identities as residents (from their first photo), two as a
// watchlist, and lists one plate, unless the gallery exists already in the default face model
// (one of another model is made again: its vectors would never be compared).
func demoGallery(lib *camsim.Library, path string, stdout io.Writer) error {
	if f, err := pipeline.ReadGalleryFile(path); err == nil && len(f.People) > 0 {
		if f.Model == space.DefaultSpace.Name {
			fmt.Fprintf(stdout, "gallery: %s (delete it to enrol the demo residents again)\n", path)
			return nil
		}
		fmt.Fprintf(stdout, "gallery: %s was enrolled with the %s face model; enrolling the demo residents again with %s\n", path, f.Model, space.DefaultSpace.Name)
	}
	dir, err := models.Dir(os.Getenv("VIGIL_MODELS"))
	if err != nil {
		return err
	}
	faces, err := dnn.NewFaces(dir, dnn.DetectorOptions{})
	if err != nil {
		return err
	}
	defer faces.Close()
	g := pipeline.NewGallery(pipeline.MatchOptions{})
	ids := lib.Identities()
	enrolled := 0
	for i, id := range ids {
		list := ""
		switch {
		case i%2 == 0:
			list = "residents"
		case i == 1 || i == 5:
			list = "watchlist"
		default:
			continue // strangers: walk past, never matched
		}
		img, err := recognizers.LoadImage(filepath.Join(lib.Dir, lib.Faces[id][0]))
		if err != nil {
			return err
		}
		e, _, err := pipeline.EnrolFace(faces, img, pipeline.EnrolGate{})
		img.Close()
		if err != nil {
			fmt.Fprintf(stdout, "  not enrolled %s: %v\n", id, err)
			continue
		}
		g.Add(pipeline.Person{ID: id, Name: id, List: list, Embeddings: []recognizers.Embedding{e}, Sources: []string{lib.Faces[id][0]}})
		enrolled++
	}
	g.AddPlate(pipeline.ListedPlate{Text: "粤B12345", List: "blacklist", Note: "demo"})
	fmt.Fprintf(stdout, "gallery: enrolled %d of %d test identities (the rest are strangers), plate 粤B12345 blacklisted → %s\n", enrolled, len(ids), path)
	return g.Save(path)
}
