// Command attack measures one vigil serve under attack: honest door controllers make card
// decisions at a steady pace, first alone, then while attackers (from another loopback address)
// send forged and replayed controller requests, oversized door ids and bodies, slow-loris
// connections, guessed bearer tokens and a flood of WHEP offers from one token. It prints the
// honest decisions' p99 latency without and with the attack (and the ratio), the audit rows the
// attack added, vigil's memory growth, and every honest decision that failed (goal 0).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
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

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/bench/measure"
)

const base = "http://127.0.0.1:18996"

func main() {
	doors := flag.Int("doors", 16, "honest controllers (one door each)")
	rate := flag.Float64("rate", 20, "decisions per second per honest controller")
	phase := flag.Duration("phase", 20*time.Second, "length of each phase (honest alone, then under attack)")
	vigil := flag.String("vigil", "bin/vigil", "the vigil binary")
	flag.Parse()
	if err := run(*doors, *rate, *phase, *vigil); err != nil {
		fmt.Fprintln(os.Stderr, "attack bench:", err)
		os.Exit(1)
	}
}

// door is an honest controller's door: its key and a resident's card that opens it.
type door struct {
	id   string
	key  []byte
	card string
}

func run(nDoors int, rate float64, phase time.Duration, vigil string) error {
	ctx := context.Background()
	bed, err := measure.NewBed(ctx, vigil, "attack")
	if err != nil {
		return err
	}
	defer bed.Close()
	url, data, env, cli := bed.URL, bed.Data, bed.Env, bed.CLI
	admin, err := cli("token", "create", "--role", "admin", "--name", "bench admin")
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	operator, _ := cli("token", "create", "--role", "operator", "--name", "bench operator")
	cfg := filepath.Join(data, "vigil.yaml")
	os.WriteFile(cfg, []byte("http: {addr: 127.0.0.1:18996}\npipeline: {enabled: false}\nfootage: {enabled: false}\nlog: {level: error}\nlive: {udp_addr: '127.0.0.1:18197'}\n"), 0o600)
	srv := exec.Command(vigil, "serve", "--config", cfg, "--data", data)
	srv.Env, srv.Stderr = env, os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	if err := measure.WaitReady(base, 2*time.Minute); err != nil {
		return err
	}
	ds, err := site(admin, nDoors)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	count := func(q string) (n int) { conn.QueryRow(ctx, q).Scan(&n); return }

	fmt.Printf("attack bench: %d honest controllers at %.0f card decisions/s each, %s alone, then %s under attack from 127.0.0.2\n", nDoors, rate, phase, phase)
	rss0 := measure.RSSKB(srv.Process.Pid)
	calm := honest(ds, rate, phase)
	auditBefore := count(`SELECT count(*) FROM audit WHERE action <> 'door.decision'`)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tally := attackers(ds, operator, stop, &wg)
	storm := honest(ds, rate, phase)
	close(stop)
	wg.Wait()
	time.Sleep(61 * time.Second) // one flush of the aggregated refusals
	auditAdded := count(`SELECT count(*) FROM audit WHERE action <> 'door.decision'`) - auditBefore
	rss1 := measure.RSSKB(srv.Process.Pid)

	fmt.Printf("honest decisions alone:        %d, p50 %.1f ms, p99 %.1f ms, %d failed\n", calm.n, ms(calm.p(50)), ms(calm.p(99)), calm.failed)
	fmt.Printf("honest decisions under attack: %d, p50 %.1f ms, p99 %.1f ms, %d failed\n", storm.n, ms(storm.p(50)), ms(storm.p(99)), storm.failed)
	for _, r := range []results{calm, storm} {
		for why, n := range r.why {
			fmt.Printf("  failed: %d × %s\n", n, why)
		}
	}
	fmt.Printf("p99 under attack / alone: %.2f\n", ms(storm.p(99))/ms(calm.p(99)))
	fmt.Printf("attack requests sent: %s\n", tally)
	fmt.Printf("audit rows the attack added: %d (refusals aggregated per door, address and reason per minute; token guesses and throttled requests are counted in metrics, not rows)\n", auditAdded)
	fmt.Printf("vigil RSS: %d MB before, %d MB after (%+d MB)\n", rss0/1024, rss1/1024, (rss1-rss0)/1024)
	if calm.failed+storm.failed > 0 {
		return fmt.Errorf("%d honest decisions failed", calm.failed+storm.failed)
	}
	return nil
}

// site makes the doors, a resident with a card for each, through the admin API.
func site(token string, n int) ([]door, error) {
	post := func(path, body string) ([]byte, error) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 201 {
			return nil, fmt.Errorf("POST %s: %d %s", path, r.StatusCode, b)
		}
		return b, nil
	}
	var out []door
	for i := range n {
		id, person, card := fmt.Sprintf("d%02d", i), fmt.Sprintf("p%02d", i), fmt.Sprintf("CARD-%02d", i)
		b, err := post("/v1/doors", fmt.Sprintf(`{"id":%q}`, id))
		if err != nil {
			return nil, err
		}
		var d struct{ Key string }
		json.Unmarshal(b, &d)
		key, _ := hex.DecodeString(d.Key)
		for _, step := range [][2]string{
			{"/v1/people", fmt.Sprintf(`{"id":%q,"name":%q,"kind":"staff"}`, person, person)},
			{"/v1/people/" + person + "/credentials", fmt.Sprintf(`{"kind":"card","value":%q}`, card)},
			{"/v1/doors/" + id + "/rules", fmt.Sprintf(`{"who_kind":"person","who":%q}`, person)},
		} {
			if _, err := post(step[0], step[1]); err != nil {
				return nil, err
			}
		}
		out = append(out, door{id, key, card})
	}
	return out, nil
}

// decision is a signed card decision's request.
func decision(d door, value string, nonce string, at time.Time) *http.Request {
	body, _ := json.Marshal(map[string]any{"credential": access.Presented{Kind: "card", Value: value}})
	path := "/v1/doors/" + d.id + "/decisions"
	ts := strconv.FormatInt(at.Unix(), 10)
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
	req.Header.Set(access.HeaderTimestamp, ts)
	req.Header.Set(access.HeaderNonce, nonce)
	req.Header.Set(access.HeaderSignature, access.Sign(d.key, "POST", path, "", ts, nonce, body))
	return req
}

var honestSeq atomic.Int64 // nonces are never reused, across phases too

type results struct {
	n, failed int
	lat       []time.Duration
	why       map[string]int // failures by cause
}

func (r results) p(q int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, len(r.lat)*q/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// honest runs each door's controller at rate for dur, each from its own address (127.0.1.N, as
// controllers on a site's network are), and collects latencies.
func honest(ds []door, rate float64, dur time.Duration) results {
	var mu sync.Mutex
	var res results
	var wg sync.WaitGroup
	end := time.Now().Add(dur)
	for i, d := range ds {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}, Timeout: 5 * time.Second}
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
		wg.Go(func() {
			t := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer t.Stop()
			for time.Now().Before(end) {
				<-t.C
				t0 := time.Now()
				resp, err := client.Do(decision(d, d.card, fmt.Sprintf("honest-%s-%012d", d.id, honestSeq.Add(1)), t0))
				why := ""
				if err != nil {
					why = err.Error()
					if i := strings.LastIndex(why, ": "); i > 0 {
						why = why[i+2:]
					}
				} else {
					var dec access.Decision
					json.NewDecoder(resp.Body).Decode(&dec)
					resp.Body.Close()
					if resp.StatusCode != 200 || !dec.Grant {
						why = fmt.Sprintf("%d %s", resp.StatusCode, dec.Reason)
					}
				}
				mu.Lock()
				res.n++
				if why == "" {
					res.lat = append(res.lat, time.Since(t0))
				} else {
					res.failed++
					if res.why == nil {
						res.why = map[string]int{}
					}
					res.why[why]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(res.lat)
	return res
}

// attackers start the attack from 127.0.0.2 until stop; the returned tally says what was sent.
func attackers(ds []door, token string, stop chan struct{}, wg *sync.WaitGroup) *tally {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 64}}
	t := &tally{}
	loop := func(name string, fn func(i int)) {
		for w := range 4 {
			wg.Go(func() {
				for i := w; ; i += 4 {
					select {
					case <-stop:
						return
					default:
					}
					fn(i)
					t.add(name)
				}
			})
		}
	}
	do := func(req *http.Request) {
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	// Forged: signed with a key that is not the door's.
	loop("forged", func(i int) {
		d := ds[i%len(ds)]
		do(decision(door{d.id, []byte("not-the-key-not-the-key-not-the-"), d.card}, d.card, fmt.Sprintf("forged-%016d", i), time.Now()))
	})
	// Replayed: one honest request's exact bytes, again and again.
	captured := decision(ds[0], ds[0].card, "replayed-request-0001", time.Now())
	body, _ := io.ReadAll(captured.Body)
	do(decision(ds[0], ds[0].card, "replayed-request-0001", time.Now())) // the original
	loop("replayed", func(int) {
		req, _ := http.NewRequest("POST", captured.URL.String(), bytes.NewReader(body))
		req.Header = captured.Header.Clone()
		do(req)
	})
	// Oversized: a 100 KB door id, a 4 MB body.
	big := bytes.Repeat([]byte("x"), 4<<20)
	loop("oversized", func(i int) {
		if i%2 == 0 {
			req, _ := http.NewRequest("POST", base+"/v1/doors/"+strings.Repeat("d", 100000)+"/decisions", nil)
			do(req)
			return
		}
		d := ds[i%len(ds)]
		req, _ := http.NewRequest("POST", base+"/v1/doors/"+d.id+"/decisions", bytes.NewReader(big))
		req.Header.Set(access.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
		req.Header.Set(access.HeaderNonce, fmt.Sprintf("oversized-%016d", i))
		req.Header.Set(access.HeaderSignature, strings.Repeat("00", 32))
		do(req)
	})
	// Guessed tokens.
	loop("token guesses", func(int) {
		var b [32]byte
		rand.Read(b[:])
		req, _ := http.NewRequest("GET", base+"/v1/cameras", nil)
		req.Header.Set("Authorization", "Bearer vgl_"+hex.EncodeToString(b[:]))
		do(req)
	})
	// A flood of WHEP offers from one (valid) token.
	loop("WHEP offers", func(int) {
		req, _ := http.NewRequest("POST", base+"/v1/live/cam001/whep", strings.NewReader("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/sdp")
		do(req)
	})
	// Slow loris: connections that send a header byte every few seconds.
	for i := range 200 {
		wg.Go(func() {
			c, err := dialer.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				return
			}
			defer c.Close()
			t.add("slow-loris connections")
			fmt.Fprintf(c, "GET /v1/cameras HTTP/1.1\r\nHost: x\r\n")
			tick := time.NewTicker(3 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
						return // the server hung up on it (read header timeout)
					}
				}
			}
		})
	}
	return t
}

type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *tally) add(k string) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]int{}
	}
	t.m[k]++
	t.mu.Unlock()
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, t.m[k]))
	}
	return strings.Join(parts, ", ")
}
