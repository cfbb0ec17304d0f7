package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// doorScene is a site for camera-to-door tests: a database, doors each watched by a camsim
// camera playing one clip, a vigil node recognising them, and doorsim controllers on the doors'
// command channels recording every unlock.
type doorScene struct {
	t         *testing.T
	td, data  string
	dbURL     string
	admin     *http.Client
	doors     map[string]string // camera → door
	keys      map[string][]byte
	sim       *camsim.Server
	truthFile *os.File
	truth     *camsim.TruthWriter
	node      *testNode

	mu      sync.Mutex
	unlocks []access.Command
	stopC   context.CancelFunc
	wg      sync.WaitGroup
}

// newDoorScene registers the doors, builds the clip from evs (seconds long) and starts the node
// on cameras cameras (cam001…), cameras beyond the doors' watching the street. tune changes the
// node's configuration before it starts.
func newDoorScene(t *testing.T, doors map[string]string, cameras int, evs []camsim.Event, seconds int, tune ...func(*config.Config)) *doorScene {
	t.Helper()
	s := &doorScene{t: t, td: testenv.Testdata(t), data: t.TempDir(), dbURL: testenv.PostgresDB(t), doors: doors, keys: map[string][]byte{}}
	testenv.Models(t)
	t.Setenv("VIGIL_DATABASE_URL", s.dbURL)
	_, out, _ := runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", s.data)
	s.admin = &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	for cam, door := range doors {
		args := []string{"doors", "add", "--id", door, "--camera", cam, "--data", s.data}
		if strings.HasPrefix(door, "barrier-") { // a car park's barrier
			args = append(args, "--area", "carpark-1", "--camera-opens", "plates")
		}
		code, out, errs := runCmd(args...)
		if code != 0 {
			t.Fatalf("doors add: %s", errs)
		}
		s.keys[door], _ = hex.DecodeString(strings.TrimSpace(out))
	}
	lib, _ := camsim.LoadLibrary(s.td)
	for i := range evs {
		if err := lib.Resolve(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	clip, err := camsim.BuildClip(context.Background(), lib, camsim.Params{Width: 640, Height: 360, FPS: 10, GOP: 1, Bitrate: 600, Seconds: float64(seconds)},
		evs, 1, filepath.Join(os.TempDir(), "vigil-test-clips"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s.truthFile, _ = os.Create(filepath.Join(s.data, "truth.jsonl"))
	t.Cleanup(func() { s.truthFile.Close() })
	s.truth = camsim.NewTruthWriter(s.truthFile)
	simAddr := freeAddrT(t)
	s.sim, _ = camsim.NewServer(camsim.Config{RTSPAddress: simAddr, Cameras: cameras, Truth: s.truth, Seed: 3}, []*camsim.Clip{clip}, log)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = s.data
	cfg.Pipeline.FPS = 5
	cfg.Pipeline.PlateWorkers = 0
	cfg.Footage.Enabled = false
	cfg.Database.URL = config.SecretURL(s.dbURL)
	if m := os.Getenv("VIGIL_FACE_MODEL"); m != "" { // bench/run.sh eadoors compares the models
		cfg.Pipeline.FaceModel = m
	}
	var urls []string
	for i := 1; i <= cameras; i++ {
		urls = append(urls, fmt.Sprintf("rtsp://%s/cam/%03d", simAddr, i))
	}
	cfg.AddCameras(urls)
	for _, f := range tune {
		f(&cfg)
	}
	s.node = startNode(t, cfg)
	return s
}

// call POSTs an admin change and wants 201.
func (s *doorScene) call(path, body string) {
	s.t.Helper()
	r, err := s.admin.Post(s.node.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 201 {
		s.t.Fatalf("POST %s: %d %s", path, r.StatusCode, b)
	}
}

// resident adds a person with a lease in unit, a card, and their face enrolled from photo.
func (s *doorScene) resident(id, unit, photo string) {
	s.t.Helper()
	lease := fmt.Sprintf(`"starts":%q,"ends":%q`, time.Now().AddDate(0, -1, 0).Format(time.RFC3339), time.Now().AddDate(1, 0, 0).Format(time.RFC3339))
	s.call("/v1/people", fmt.Sprintf(`{"id":%q,"name":%q,"kind":"resident"}`, id, id))
	s.call("/v1/people/"+id+"/leases", fmt.Sprintf(`{"unit":%q,%s}`, unit, lease))
	s.call("/v1/people/"+id+"/credentials", fmt.Sprintf(`{"kind":"card","value":%q}`, "CARD-"+id))
	img, err := os.ReadFile(filepath.Join(s.td, photo))
	if err != nil {
		s.t.Fatal(err)
	}
	body, ct := multipartBody(map[string]string{"consent": "signed form"}, img)
	r, err := s.admin.Post(s.node.URL+"/v1/people/"+id+"/faces", ct, body)
	if err != nil || r.StatusCode != 201 {
		b := []byte{}
		if r != nil {
			b, _ = io.ReadAll(r.Body)
		}
		s.t.Fatalf("enrol %s from %s: %v %s", id, photo, err, b)
	}
}

// run starts the doors' controllers and the cameras, lets the clip play for d, stops the
// cameras and waits for the last decisions. It returns when the cameras stopped.
func (s *doorScene) run(d time.Duration) (simStop time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopC = cancel
	for door, key := range s.keys {
		c := doorsim.New(s.node.URL, door, key)
		c.OnUnlock = func(cmd access.Command) {
			if cmd.Event == "" || cmd.Door != door {
				s.t.Errorf("command %+v", cmd)
			}
			s.mu.Lock()
			s.unlocks = append(s.unlocks, cmd)
			s.mu.Unlock()
		}
		s.wg.Go(func() { c.Run(ctx, time.Minute) })
	}
	if err := s.sim.Start(); err != nil {
		s.t.Fatal(err)
	}
	time.Sleep(d)
	simStop = time.Now()
	s.sim.Close()
	s.truth.Flush()
	time.Sleep(3 * time.Second) // the last frames through recognition and the channel
	cancel()
	s.wg.Wait()
	return simStop
}

// passages reads camsim's ground truth: every face passage (kind "plate": every car's).
func (s *doorScene) passages(kind ...string) []camsim.TruthLine {
	want := "face"
	if len(kind) > 0 {
		want = kind[0]
	}
	b, _ := os.ReadFile(s.truthFile.Name())
	var out []camsim.TruthLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l camsim.TruthLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Kind == want {
			out = append(out, l)
		}
	}
	return out
}
