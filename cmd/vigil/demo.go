package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
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
	udpAddr := fs.String("udp", "", "the live views' WebRTC UDP port (default: live.udp_addr's)")
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
	if *udpAddr != "" {
		cfg.Live.UDPAddr = *udpAddr
	}
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
	cast, err := demoGallery(lib, clips, cfg.Pipeline.Gallery, stdout)
	if err != nil {
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
	estate, err := demoResidents(ctx, cfg, clips, *n, cast.Plate, stdout, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, func(addr string) {
		go runDemoController(ctx, "http://"+addr, demoDoorID, doorKey, "door", "opened by face for", stdout)
		if estate.barrier != "" {
			go runDemoController(ctx, "http://"+addr, estate.barrier, estate.key, "barrier", "opened for the car of", stdout)
		}
		printDemo(stdout, demoLines{addr: addr, token: token, data: cfg.Data, rtsp: *rtspAddr, cameras: *n, truth: tf.Name(), cast: cast, estate: estate})
	})
}

// demoLines is what the demo prints once it serves.
type demoLines struct {
	addr, token, data, rtsp, truth string
	cameras                        int
	cast                           demoCast
	estate                         demoEstate
}

// printDemo prints the demo's addresses and ready-to-paste commands; each runs as printed from
// the repository's root (the binary is ./bin/vigil, as scripts/demo.sh builds it).
func printDemo(w io.Writer, d demoLines) {
	h := `-H "Authorization: Bearer ` + d.token + `"`
	now := time.Now().UTC()
	from, to := now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	bin := "./bin/vigil"
	if _, err := os.Stat(bin); err != nil {
		bin = "go run ./cmd/vigil"
	}
	fmt.Fprintf(w, "\nvigil demo is running (Ctrl-C stops everything):\n"+
		"  console:  http://%s/  (sign in with the token below; live wall, alerts, map, search, doors)\n"+
		"  token:    %s  (admin; also in %s)\n"+
		"  patrol:   %s token create --role patrol --name \"patrol 1\" --data %s  (then sign in on a phone-sized window)\n"+
		"  cameras:  curl %s http://%s/v1/cameras\n  metrics:  http://%s/metrics\n"+
		"  RTSP:     rtsp://%s/cam/001 … /cam/%03d (try: ffplay -rtsp_transport tcp rtsp://%s/cam/001); sub-streams at /cam/NNN/sub, analysed\n"+
		"  truth:    %s (who passed which camera, when)\n"+
		"  door:     %s on cam001 opens by face for the demo residents; each unlock prints here, and the console's Doors page shows it\n"+
		"  alerts:   watch-listed %s walk past the cameras; plate %s is blacklisted (console: Alerts)\n"+
		"  events:   curl -N %s http://%s/v1/events/live   (one event per passage, with identity)\n",
		d.addr, d.token, filepath.Join(d.data, "demo-token"), bin, d.data, h, d.addr, d.addr, d.rtsp, d.cameras, d.rtsp, d.truth, demoDoorID,
		strings.Join(names(d.cast.Watch), " and "), d.cast.Plate, h, d.addr)
	if d.cast.SearchPhoto != "" {
		fmt.Fprintf(w, "  faces:    curl %s -F image=@%s -F from=%s -F to=%s -F reason=demo http://%s/v1/search/faces   (%s, another photo than the one enrolled)\n",
			h, d.cast.SearchPhoto, from, to, d.addr, displayName(d.cast.Watch[0]))
	}
	if q := plateStart(d.cast.Plate); q != "" {
		fmt.Fprintf(w, "  plates:   curl %s 'http://%s/v1/search/plates?q=%s&from=%s&to=%s&reason=demo'   (a start without the province)\n", h, d.addr, q, from, to)
	}
	est := d.estate
	if est.property != "" {
		fmt.Fprintf(w, "  property: sign in with %s  (the property office: people, leases, import, access rules)\n", est.property)
	}
	if est.barrier != "" {
		fmt.Fprintf(w, "  barrier:  %s on %s opens for %s's car %s; other cars are refused (console: People, search the plate; GET /v1/parking)\n",
			est.barrier, est.camera, displayName(est.owner), est.car)
	}
	if est.join != "" {
		fmt.Fprintf(w, "  resident: http://%s/#/join?code=%s  (%s's phone: open it in a phone-sized window, once; invite a visitor, open a door)\n",
			d.addr, est.join, displayName(est.owner))
	}
	fmt.Fprintf(w, "  audit:    %s audit verify --data %s\n\n", bin, d.data)
}

func names(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = displayName(id)
	}
	return out
}

// plateStart is a plate's first four characters after the province character: what a witness
// might remember.
func plateStart(plate string) string {
	r := []rune(plate)
	if len(r) < 5 {
		return ""
	}
	return string(r[1:5])
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

// demoCast is who plays which part in the demo's scenes.
type demoCast struct {
	Watch       []string // watch-listed people who walk past the cameras (face alerts)
	Plate       string   // a blacklisted plate the gate cameras see (plate alerts)
	SearchPhoto string   // another photo of Watch[0], for the printed face search
}

// demoGallery enrols half the test identities as residents, watch-lists the two others seen most
// often in the demo's scenes (large enough to recognise), so that the demo raises face alerts,
// and blacklists the plate seen most often, unless the gallery exists already in the default
// face model (one of another model is made again: its vectors would never be compared). Each
// person is enrolled from the first of their photos in which a face is found.
func demoGallery(lib *camsim.Library, clips []*camsim.Clip, path string, stdout io.Writer) (demoCast, error) {
	if f, err := pipeline.ReadGalleryFile(path); err == nil && len(f.People) > 0 {
		if f.Model == space.DefaultSpace.Name {
			fmt.Fprintf(stdout, "gallery: %s (delete it to enrol the demo residents again)\n", path)
			return castOf(lib, f), nil
		}
		fmt.Fprintf(stdout, "gallery: %s was enrolled with the %s face model; enrolling the demo residents again with %s\n", path, f.Model, space.DefaultSpace.Name)
	}
	dir, err := models.Dir(os.Getenv("VIGIL_MODELS"))
	if err != nil {
		return demoCast{}, err
	}
	faces, err := dnn.NewFaces(dir, dnn.DetectorOptions{})
	if err != nil {
		return demoCast{}, err
	}
	defer faces.Close()
	g := pipeline.NewGallery(pipeline.MatchOptions{})
	ids := lib.Identities()
	seen, plates := seenInClips(clips)
	var others []string
	for i, id := range ids {
		if i%2 == 1 && seen[id] > 0 {
			others = append(others, id)
		}
	}
	slices.SortStableFunc(others, func(a, b string) int { return seen[b] - seen[a] })
	watch := 0
	enrolled := 0
	enrol := func(id, list string) bool {
		for _, photo := range lib.Faces[id] {
			img, err := recognizers.LoadImage(filepath.Join(lib.Dir, photo))
			if err != nil {
				continue
			}
			e, _, err := pipeline.EnrolFace(faces, img, pipeline.EnrolGate{})
			img.Close()
			if err == nil {
				g.Add(pipeline.Person{ID: id, Name: displayName(id), List: list, Embeddings: []recognizers.Embedding{e}, Sources: []string{photo}})
				enrolled++
				return true
			}
		}
		fmt.Fprintf(stdout, "  not enrolled %s: no photo with a face the enrolment accepts\n", id)
		return false
	}
	for i, id := range ids {
		if i%2 == 0 {
			enrol(id, "residents")
		}
	}
	for _, id := range others {
		if watch < 2 && enrol(id, "watchlist") {
			watch++
		}
	}
	plate := "粤B12345"
	if plates[plate] == 0 && len(plates) > 0 {
		plate = mostSeen(plates)
	}
	g.AddPlate(pipeline.ListedPlate{Text: plate, List: "blacklist", Note: "demo"})
	fmt.Fprintf(stdout, "gallery: enrolled %d of %d test identities (%d watch-listed, the rest are strangers), plate %s blacklisted → %s\n",
		enrolled, len(ids), watch, plate, path)
	if err := g.Save(path); err != nil {
		return demoCast{}, err
	}
	f, err := pipeline.ReadGalleryFile(path)
	return castOf(lib, f), err
}

// seenInClips counts the passages of each identity (faces of 80 px or more) and plate.
func seenInClips(clips []*camsim.Clip) (faces, plates map[string]int) {
	faces, plates = map[string]int{}, map[string]int{}
	for _, c := range clips {
		for _, e := range c.Events {
			switch {
			case e.Kind == "face" && e.Size >= 80:
				faces[e.Identity]++
			case e.Kind == "plate":
				plates[e.Plate]++
			}
		}
	}
	return faces, plates
}

func mostSeen(n map[string]int) string {
	best := ""
	for k, v := range n {
		if best == "" || v > n[best] || (v == n[best] && k < best) {
			best = k
		}
	}
	return best
}

// castOf reads the cast from a gallery: its watch list, its listed plate, and for the printed
// search a photo of the first watch-listed person other than the one enrolled.
func castOf(lib *camsim.Library, f pipeline.GalleryFile) demoCast {
	var c demoCast
	for _, p := range f.People {
		if p.List != "watchlist" {
			continue
		}
		c.Watch = append(c.Watch, p.ID)
		if c.SearchPhoto != "" {
			continue
		}
		for _, photo := range lib.Faces[p.ID] {
			if c.SearchPhoto == "" || !slices.Contains(p.Sources, photo) {
				c.SearchPhoto = filepath.Join(lib.Dir, photo)
			}
		}
	}
	if len(f.Plates) > 0 {
		c.Plate = f.Plates[0].Text
	}
	return c
}

// displayName is a test identity's folder name as a person's name: "lin_manuel_miranda" is
// "Lin Manuel Miranda".
func displayName(id string) string {
	words := strings.Fields(strings.ReplaceAll(id, "_", " "))
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}
