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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestAutoUnlockFromDoorCameras runs camsim's door cameras through vigil to doorsim's
// controllers and counts the unlocks against camsim's ground truth. Two doors, each with its
// camera, and a street camera that watches no door. Obama lives behind both doors; Kit
// Harington is enrolled but lives in a unit with no right to these doors; Jeff Bezos was never
// enrolled. Every passage of Obama at a door camera opens that door once (the clip loops every
// 12 s, beyond the 10 s in which a second sighting of the same person at the same door is
// ignored); nobody else opens anything; Kit's sightings are decided and refused in the audit.
func TestAutoUnlockFromDoorCameras(t *testing.T) {
	td := testenv.Testdata(t)
	testenv.Models(t)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	_, out, _ := runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", data)
	admin := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	doors := map[string]string{"cam001": "gate-1", "cam002": "gate-2"} // cam003 watches the street
	keys := map[string][]byte{}
	for cam, door := range doors {
		code, out, errs := runCmd("doors", "add", "--id", door, "--camera", cam, "--data", data)
		if code != 0 {
			t.Fatalf("doors add: %s", errs)
		}
		keys[door], _ = hex.DecodeString(strings.TrimSpace(out))
	}

	lib, _ := camsim.LoadLibrary(td)
	evs := []camsim.Event{
		{Kind: "face", Identity: "obama", Photo: "faces/obama/1.jpg", Start: 0.3, Duration: 2.5, Size: 110},
		{Kind: "face", Identity: "kit_harington", Photo: "faces/kit_harington/2.jpg", Start: 4.3, Duration: 2.5, Size: 110, Reverse: true},
		{Kind: "face", Identity: "jeff_bezos", Photo: "faces/jeff_bezos/1.jpg", Start: 8.3, Duration: 2.5, Size: 110},
	}
	for i := range evs {
		if err := lib.Resolve(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	clip, err := camsim.BuildClip(context.Background(), lib, camsim.Params{Width: 640, Height: 360, FPS: 10, GOP: 1, Bitrate: 600, Seconds: 12},
		evs, 1, filepath.Join(os.TempDir(), "vigil-test-clips"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	truthFile, _ := os.Create(filepath.Join(data, "truth.jsonl"))
	defer truthFile.Close()
	truth := camsim.NewTruthWriter(truthFile)
	simAddr := freeAddrT(t)
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: simAddr, Cameras: 3, Truth: truth, Seed: 3}, []*camsim.Clip{clip}, log)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.FPS = 5
	cfg.Pipeline.PlateWorkers = 0
	cfg.Footage.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{"rtsp://" + simAddr + "/cam/001", "rtsp://" + simAddr + "/cam/002", "rtsp://" + simAddr + "/cam/003"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := startNode(t, cfg)
	base := n.URL

	call := func(path, body string) {
		t.Helper()
		r, err := admin.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 201 {
			t.Fatalf("POST %s: %d %s", path, r.StatusCode, b)
		}
	}
	lease := fmt.Sprintf(`"starts":%q,"ends":%q`, time.Now().AddDate(0, -1, 0).Format(time.RFC3339), time.Now().AddDate(1, 0, 0).Format(time.RFC3339))
	call("/v1/units", `{"id":"g1-0101"}`)
	call("/v1/units", `{"id":"h7-0707"}`)
	for _, p := range []struct{ id, unit, card, photo string }{
		{"obama", "g1-0101", "G1-0001", "faces/obama/2.jpg"},
		{"kit_harington", "h7-0707", "H7-0001", "faces/kit_harington/1.jpg"},
	} {
		call("/v1/people", fmt.Sprintf(`{"id":%q,"name":%q,"kind":"resident"}`, p.id, p.id))
		call("/v1/people/"+p.id+"/leases", fmt.Sprintf(`{"unit":%q,%s}`, p.unit, lease))
		call("/v1/people/"+p.id+"/credentials", fmt.Sprintf(`{"kind":"card","value":%q}`, p.card))
		img, _ := os.ReadFile(filepath.Join(td, p.photo))
		body, ct := multipartBody(map[string]string{"consent": "signed form"}, img)
		if r, err := admin.Post(base+"/v1/people/"+p.id+"/faces", ct, body); err != nil || r.StatusCode != 201 {
			t.Fatalf("enrol %s: %v %v", p.id, r.StatusCode, err)
		}
	}
	call("/v1/doors/gate-1/rules", `{"who_kind":"unit","who":"g1-0101"}`)
	call("/v1/doors/gate-2/rules", `{"who_kind":"unit","who":"g1-0101"}`)

	// The doors' controllers, on their long-poll channels.
	type unlock struct{ door, person string }
	var mu sync.Mutex
	var unlocks []unlock
	cctx, stopCtrls := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for door, key := range keys {
		c := doorsim.New(base, door, key)
		c.OnUnlock = func(cmd access.Command) {
			if cmd.Event == "" || cmd.Door != door {
				t.Errorf("command %+v", cmd)
			}
			mu.Lock()
			unlocks = append(unlocks, unlock{cmd.Door, cmd.PersonID})
			mu.Unlock()
		}
		wg.Go(func() { c.Run(cctx, time.Minute) })
	}
	if err := sim.Start(); err != nil { // they walk past after the enrolment
		t.Fatal(err)
	}
	time.Sleep(26 * time.Second) // two loops of the clip on every camera
	simStop := time.Now()
	sim.Close()
	truth.Flush()
	time.Sleep(3 * time.Second) // the last frames through recognition and the channel
	stopCtrls()
	wg.Wait()

	// Ground truth: Obama's passages at each door's camera, the sure ones (seen whole before the
	// cameras stopped) and those cut short by the cameras' start or stop (they may or may not
	// open).
	sure, maybe := map[string]int{}, map[string]int{}
	others := 0
	b, _ := os.ReadFile(truthFile.Name())
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l camsim.TruthLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Kind != "face" {
			continue
		}
		door, ok := doors[l.Camera]
		switch {
		case !ok || l.Identity != "obama":
			others++
		case !l.Partial && l.Leave.Before(simStop):
			sure[door]++
		default:
			maybe[door]++
		}
	}
	got := map[string]int{}
	for _, u := range unlocks {
		if u.person != "obama" {
			t.Errorf("%s opened for %s", u.door, u.person)
		}
		got[u.door]++
	}
	t.Logf("unlocks %v; Obama's passages at the doors: %v whole, %v cut short; %d other passages", got, sure, maybe, others)
	for _, door := range doors {
		if sure[door] == 0 {
			t.Fatalf("camsim sent no whole passage of Obama past %s", door)
		}
		if got[door] < sure[door] || got[door] > sure[door]+maybe[door] {
			t.Errorf("%s: %d unlocks for %d passages (+%d cut short)", door, got[door], sure[door], maybe[door])
		}
	}
	if others == 0 {
		t.Fatal("no other passages in the scene")
	}
	// Kit was seen at the doors and refused by the same decision path, in the audit.
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var kitDenied, obamaGranted int
	err = conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE d->>'person' = 'kit_harington' AND NOT (d->>'grant')::bool),
		count(*) FILTER (WHERE d->>'person' = 'obama' AND (d->>'grant')::bool)
		FROM (SELECT detail::jsonb AS d FROM audit WHERE action = 'door.decision') a WHERE d->>'source' = 'camera'`).Scan(&kitDenied, &obamaGranted)
	if err != nil {
		t.Fatal(err)
	}
	if kitDenied == 0 || obamaGranted != len(unlocks) {
		t.Errorf("audit: %d refusals for Kit, %d grants for Obama (%d unlocks)", kitDenied, obamaGranted, len(unlocks))
	}
	n.Stop()
}

func freeAddrT(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
