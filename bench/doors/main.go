// Command doors measures card decisions through the signed unlock API on loopback: a site of
// N residents with cards and leases, 600 doors with unit rules, C concurrent controllers sending
// signed requests for a fixed time. It prints decisions per second, latency, and decisions per
// second per core (CPU of this process — server and load generator together — plus PostgreSQL's,
// where every decision is audited).
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/api"
	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/paths"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/schema"
)

func main() {
	residents := flag.Int("residents", 40000, "residents with a card and a lease")
	doors := flag.Int("doors", 600, "doors")
	conc := flag.Int("controllers", 64, "concurrent controllers")
	dur := flag.Duration("duration", 10*time.Second, "measured time")
	flag.IntVar(&faceTemplates, "faces", 40000, "enrolled face templates for the face decisions (0 skips them)")
	flag.StringVar(&vigilBin, "vigil", "bin/vigil", "the vigil binary serving the face decisions")
	flag.Float64Var(&paceRate, "rate", 0, "decisions per second in all, paced (0: as fast as the controllers go)")
	flag.BoolVar(&siteMode, "site", false, "decide as one node of a site: controller nonces claimed in a NATS server's KV bucket over TCP, door state shared")
	flag.Parse()
	if err := run(*residents, *doors, *conc, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "doors bench:", err)
		os.Exit(1)
	}
}

func run(nRes, nDoors, conc int, dur time.Duration) error {
	ctx := context.Background()
	url, drop, err := testenv.CreateDB(ctx)
	if err != nil {
		return err
	}
	defer drop()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := schema.Migrate(ctx, pool); err != nil {
		return err
	}
	// The site, written straight to the tables (the admin API's per-row audit is not what is measured).
	now := time.Now()
	units := nDoors // one building door per unit block
	var rows [][]any
	for u := range units {
		rows = append(rows, []any{fmt.Sprintf("u%d", u), "", ""})
	}
	copyRows := func(table string, cols []string, rows [][]any) error {
		_, err := pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	}
	if err := copyRows("units", []string{"id", "name", "building"}, rows); err != nil {
		return err
	}
	var people, leases, creds [][]any
	for i := range nRes {
		id := fmt.Sprintf("p%d", i)
		people = append(people, []any{id, id, "resident"})
		leases = append(leases, []any{id, fmt.Sprintf("u%d", i%units), now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)})
		h := access.SecretKey("card", "CARD-"+id)
		creds = append(creds, []any{id, "card", h[:]})
	}
	if err := copyRows("people", []string{"id", "name", "kind"}, people); err != nil {
		return err
	}
	if err := copyRows("leases", []string{"person_id", "unit_id", "starts", "ends"}, leases); err != nil {
		return err
	}
	if err := copyRows("credentials", []string{"person_id", "kind", "secret_hash"}, creds); err != nil {
		return err
	}
	keys := make([][]byte, nDoors)
	var doorRows, ruleRows [][]any
	for d := range nDoors {
		keys[d] = access.NewKey()
		doorRows = append(doorRows, []any{fmt.Sprintf("d%d", d), keys[d]})
		ruleRows = append(ruleRows, []any{fmt.Sprintf("d%d", d), "unit", fmt.Sprintf("u%d", d%units)})
	}
	if err := copyRows("doors", []string{"id", "key"}, doorRows); err != nil {
		return err
	}
	if err := copyRows("rules", []string{"door_id", "who_kind", "who"}, ruleRows); err != nil {
		return err
	}
	audit := audit.New(pool, "")
	e, err := access.NewEngine(ctx, pool, audit, make([]byte, 32))
	if err != nil {
		return err
	}
	deps := api.Deps{Registry: prometheus.NewRegistry(), Access: e, Audit: audit}
	if siteMode {
		// As one node of a site: every controller nonce claimed in the bus's KV bucket over TCP,
		// door state told to the other nodes.
		stop, err := joinSite(ctx, e, &deps)
		if err != nil {
			return err
		}
		defer stop()
	}
	a, err := api.New(deps, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: a.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	// Each controller from its own loopback address, as each door's controller is its own host:
	// the API throttles each address to 200 requests a second.
	clientOf := func(c int) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(c%250+1))}, Timeout: 5 * time.Second}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}}
	}

	var granted, denied, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(dur)
	self0, pg0, t0 := measure.SelfCPU(), measure.CommandCPU("postgres"), time.Now()
	var wg sync.WaitGroup
	for c := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			client := clientOf(c)
			var mine []time.Duration
			var tick *time.Ticker
			if paceRate > 0 { // open loop: each controller at its share of the rate, phases spread
				every := time.Duration(float64(conc) / paceRate * float64(time.Second))
				time.Sleep(every * time.Duration(c) / time.Duration(conc))
				tick = time.NewTicker(every)
				defer tick.Stop()
			}
			for n := 0; time.Now().Before(deadline); n++ {
				if tick != nil {
					<-tick.C
				}
				// A resident at their unit's door (granted) or someone else's (denied: no rule).
				p := rng.IntN(nRes)
				d := p % units
				if rng.IntN(10) == 0 {
					d = rng.IntN(nDoors)
				}
				door := fmt.Sprintf("d%d", d)
				body, _ := json.Marshal(map[string]any{"credential": access.Presented{Kind: "card", Value: fmt.Sprintf("CARD-p%d", p)}})
				path := "/v1/doors/" + door + "/decisions"
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				nonce := fmt.Sprintf("c%03d-%012d-bench", c, n)
				req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
				req.Header.Set(access.HeaderTimestamp, ts)
				req.Header.Set(access.HeaderNonce, nonce)
				req.Header.Set(access.HeaderSignature, access.Sign(keys[d], "POST", path, "", ts, nonce, body))
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				var dec access.Decision
				json.NewDecoder(resp.Body).Decode(&dec)
				resp.Body.Close()
				mine = append(mine, time.Since(t))
				switch {
				case resp.StatusCode != 200:
					failed.Add(1)
				case dec.Grant:
					granted.Add(1)
				default:
					denied.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	wall := time.Since(t0)
	self, pg := measure.SelfCPU()-self0, measure.CommandCPU("postgres")-pg0
	total := granted.Load() + denied.Load()
	slices.Sort(lat)
	rate := float64(total) / wall.Seconds()
	cores := (self + pg).Seconds() / wall.Seconds()
	mode := "one node"
	if siteMode {
		mode = "a node of a site (nonces in the bus's KV over TCP)"
	}
	fmt.Printf("card decisions through the signed API as %s, %d controllers, %d residents, %d doors, %v: %.0f decisions/s (%d granted, %d denied, %d failed)\n",
		mode, conc, nRes, nDoors, dur, rate, granted.Load(), denied.Load(), failed.Load())
	fmt.Printf("latency p50 %.2f ms, p99 %.2f ms; CPU %.2f cores (this process %.2f incl. the load generator, PostgreSQL %.2f) → %.0f decisions/s per core\n",
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), cores, self.Seconds()/wall.Seconds(), pg.Seconds()/wall.Seconds(), rate/cores)
	var audited int64
	pool.QueryRow(ctx, `SELECT count(*) FROM audit WHERE action = 'door.decision'`).Scan(&audited)
	fmt.Printf("audited decisions: %d of %d\n", audited, total)
	hs.Close()
	if faceTemplates > 0 {
		return faceBench(ctx, url, pool, keys[0], min(faceTemplates, nRes))
	}
	return nil
}

var (
	faceTemplates int
	vigilBin      string
	siteMode      bool
	paceRate      float64
	siteBusURL    string // the site's bus, in site mode
)

// faceBench enrols n synthetic templates and one real face (resident p0, door d0), runs vigil
// serve on the database and times signed face decisions with another photo of that person.
func faceBench(ctx context.Context, url string, pool *pgxpool.Pool, key []byte, n int) error {
	sp := space.DefaultSpace // templates of the face model vigil serve matches in (others are never compared)
	var rows [][]any
	for i := 1; i < n; i++ {
		id := fmt.Sprintf("p%d", i)
		rows = append(rows, []any{id, event.PackVector(access.SyntheticFace(sp, id)), float32(0.9), float32(0.9), time.Now(), "bench", sp.Name})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"face_templates"}, []string{"person_id", "embedding", "quality", "liveness", "consent_at", "consent", "model"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	// Door d0's gallery (its unit's 66 residents) is past what a face alone may open under the
	// auto policy: the bench measures the decision, so the door takes a face alone.
	if _, err := pool.Exec(ctx, `UPDATE doors SET face_policy = 'face' WHERE id = 'd0'`); err != nil {
		return err
	}
	td := paths.Shared("testdata")
	if td == "" {
		return fmt.Errorf("face decisions need ../shared/testdata")
	}
	data, _ := os.MkdirTemp("", "vigil-bench-doors-")
	defer os.RemoveAll(data)
	env := append(os.Environ(), "VIGIL_DATABASE_URL="+url, "VIGIL_HTTP_ADDR=127.0.0.1:18991", "VIGIL_LOG_LEVEL=warn")
	if siteBusURL != "" {
		env = append(env, "VIGIL_BUS_URL="+siteBusURL) // a node of the site: nonces claimed over TCP
	}
	tok := exec.Command(vigilBin, "token", "create", "--role", "admin", "--name", "bench", "--data", data)
	tok.Env = env
	out, err := tok.Output()
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	token := strings.TrimSpace(string(out))
	srv := exec.Command(vigilBin, "serve", "--data", data)
	srv.Env, srv.Stderr = env, os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	base := "http://127.0.0.1:18991"
	if err := measure.WaitReady(base, 2*time.Minute); err != nil {
		return err
	}
	photo2, _ := os.ReadFile(filepath.Join(td, "faces/obama/2.jpg"))
	photo1, _ := os.ReadFile(filepath.Join(td, "faces/obama/1.jpg"))
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	mw.WriteField("consent", "bench")
	fw, _ := mw.CreateFormFile("image", "p0.jpg")
	fw.Write(photo2)
	mw.Close()
	req, _ := http.NewRequest("POST", base+"/v1/people/p0/faces", &mb)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("enrol p0: %d %s", resp.StatusCode, b)
	}
	body, _ := json.Marshal(map[string]any{"credential": access.Presented{Kind: "face", Value: base64.StdEncoding.EncodeToString(photo1)}})
	path := "/v1/doors/d0/decisions"
	for _, conc := range []int{1, 2} {
		var mu sync.Mutex
		var lat []time.Duration
		grants := 0
		var wg sync.WaitGroup
		for c := range conc {
			wg.Go(func() {
				for i := range 60 / conc {
					ts := strconv.FormatInt(time.Now().Unix(), 10)
					nonce := fmt.Sprintf("face-%d-%d-%08d", conc, c, i)
					req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
					req.Header.Set(access.HeaderTimestamp, ts)
					req.Header.Set(access.HeaderNonce, nonce)
					req.Header.Set(access.HeaderSignature, access.Sign(key, "POST", path, "", ts, nonce, body))
					req.Header.Set("X-Vigil-Credential-Kind", "face")
					t := time.Now()
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						continue
					}
					var d access.Decision
					json.NewDecoder(resp.Body).Decode(&d)
					resp.Body.Close()
					mu.Lock()
					lat = append(lat, time.Since(t))
					if d.Grant {
						grants++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		mode := "one node"
		if siteBusURL != "" {
			mode = "a node of a site"
		}
		fmt.Printf("face decisions as %s (a %d KB JPEG, %d enrolled faces, %d at a time): p50 %.1f ms, p99 %.1f ms; %d of %d granted\n",
			mode, len(photo1)>>10, n, conc, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), grants, len(lat))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
