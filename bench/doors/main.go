// Command doors measures card decisions through the signed unlock API on loopback: a site of
// N residents with cards and leases, 600 doors with unit rules, C concurrent controllers sending
// signed requests for a fixed time. It prints decisions per second, latency, and decisions per
// second per core (CPU of this process — server and load generator together — plus PostgreSQL's,
// where every decision is audited).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/api"
	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/testenv"
	"github.com/vigil-oss/vigil/storage/events"
)

func main() {
	residents := flag.Int("residents", 39000, "residents with a card and a lease")
	doors := flag.Int("doors", 600, "doors")
	conc := flag.Int("controllers", 64, "concurrent controllers")
	dur := flag.Duration("duration", 10*time.Second, "measured time")
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
	if _, err := events.Migrate(ctx, pool); err != nil {
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
	audit := access.NewAudit(pool, "")
	e, err := access.NewEngine(ctx, pool, audit)
	if err != nil {
		return err
	}
	a, err := api.New(api.Deps{Registry: prometheus.NewRegistry(), Access: e, Audit: audit}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go a.Run(sctx, ln)
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}

	var granted, denied, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(dur)
	self0, pg0, t0 := measure.SelfCPU(), measure.CommandCPU("postgres"), time.Now()
	var wg sync.WaitGroup
	for c := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			var mine []time.Duration
			for n := 0; time.Now().Before(deadline); n++ {
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
				req.Header.Set(access.HeaderSignature, access.Sign(keys[d], "POST", path, ts, nonce, body))
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
	fmt.Printf("card decisions through the signed API, %d controllers, %d residents, %d doors, %v: %.0f decisions/s (%d granted, %d denied, %d failed)\n",
		conc, nRes, nDoors, dur, rate, granted.Load(), denied.Load(), failed.Load())
	fmt.Printf("latency p50 %.2f ms, p99 %.2f ms; CPU %.2f cores (this process %.2f incl. the load generator, PostgreSQL %.2f) → %.0f decisions/s per core\n",
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), cores, self.Seconds()/wall.Seconds(), pg.Seconds()/wall.Seconds(), rate/cores)
	var audited int64
	pool.QueryRow(ctx, `SELECT count(*) FROM audit WHERE action = 'door.decision'`).Scan(&audited)
	fmt.Printf("audited decisions: %d of %d\n", audited, total)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
