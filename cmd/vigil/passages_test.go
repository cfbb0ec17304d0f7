package main

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/site"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestSiteFailoverPassages: three `vigil serve` processes analyse six camsim cameras (a face
// walks past each every 4 s); the node running most of them is killed with SIGKILL. Every face
// passage of camsim's ground truth, but those in the measured gap of a moved camera, appears as
// events of one node only (never the dead node's and its successor's both) and at least once;
// and every face event on the bus is stored once.
func TestSiteFailoverPassages(t *testing.T) {
	models := testenv.Models(t)
	const cams = 6
	var truth testenv.Buffer
	tw := camsim.NewTruthWriter(&truth)
	s, dbURL := startSiteWith(t, siteOptions{cams: cams, analyse: "faces", truth: tw, env: []string{"VIGIL_MODELS=" + models},
		extra: "pipeline:\n  enabled: true\n  fps: 4\nfootage:\n  enabled: false\n"}, "node-a", "node-b", "node-c")
	ctx := context.Background()
	where, err := s.Settled(ctx, cams, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	settled := time.Now()
	time.Sleep(12 * time.Second) // passages on every camera, each node analysing its own
	victim := site.Busiest(site.Count(where))
	killed := time.Now()
	s.Kill(victim, syscall.SIGKILL)
	if _, err := s.Settled(ctx, cams, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("kill -9 %s (ran %d of %d cameras): all live again after %v", victim, site.Count(where)[victim], cams, back.Sub(killed).Round(100*time.Millisecond))
	time.Sleep(16 * time.Second)
	end := time.Now()
	_ = tw.Flush()
	time.Sleep(3 * time.Second) // the last passages' events reach the bus

	evs := faceEventsOnBus(t, s.BusURL)
	type passage struct {
		camsim.TruthLine
		events []*event.Event
	}
	var ps []*passage
	inGap := 0
	for _, l := range strings.Split(strings.TrimSpace(truth.String()), "\n") {
		var tl camsim.TruthLine
		if json.Unmarshal([]byte(l), &tl) != nil || tl.Kind != "face" || tl.Enter.Before(settled.Add(3*time.Second)) || tl.Leave.After(end.Add(-2*time.Second)) {
			continue
		}
		// The measured gap: a moved camera's passages from just before the kill until its new
		// node has run a moment.
		if where[tl.Camera] == victim && tl.Leave.After(killed.Add(-2*time.Second)) && tl.Enter.Before(back.Add(3*time.Second)) {
			inGap++
			continue
		}
		ps = append(ps, &passage{TruthLine: tl})
	}
	for _, e := range evs {
		for _, p := range ps {
			if e.Camera == p.Camera && !e.First.Before(p.Enter.Add(-1500*time.Millisecond)) && !e.First.After(p.Leave.Add(time.Second)) {
				p.events = append(p.events, e)
				break
			}
		}
	}
	missed, twice, split := 0, 0, 0
	for _, p := range ps {
		epochs := map[uint64]bool{}
		for _, e := range p.events {
			epochs[e.Lease] = true
		}
		switch {
		case len(p.events) == 0:
			missed++
			t.Logf("missed: %s %s %s–%s", p.Camera, p.Identity, p.Enter.Sub(settled).Round(time.Millisecond), p.Leave.Sub(settled).Round(time.Millisecond))
		case len(epochs) > 1:
			twice++
			t.Logf("two nodes: %s at %s: epochs %v", p.Camera, p.Enter.Sub(settled).Round(time.Millisecond), epochs)
		case len(p.events) > 1:
			split++ // one node lost the face and found it again: a tracker matter, not the cluster's
		}
	}
	t.Logf("%d face passages scored (%d in the measured gap left out), %d missed, %d by two nodes, %d split by one node; %d face events on the bus",
		len(ps), inGap, missed, twice, split, len(evs))
	if len(ps) < cams*3 {
		t.Fatalf("only %d passages scored", len(ps))
	}
	if twice > 0 || missed > len(ps)/20 {
		t.Errorf("%d passages stored by two nodes, %d missed of %d", twice, missed, len(ps))
	}
	// Every face event on the bus stored once.
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE id = ANY($1)`, ids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == len(ids) {
			break
		}
		if n > len(ids) || time.Now().After(deadline) {
			t.Fatalf("%d face events on the bus, %d stored", len(ids), n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// faceEventsOnBus reads every face event the site's stream holds.
func faceEventsOnBus(t *testing.T, busURL string) []*event.Event {
	t.Helper()
	nc, err := nats.Connect(busURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "VIGIL_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{event.SubjectPrefix + "." + event.KindFace + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if e, err := event.Unpack(m.Data()); err == nil {
				out = append(out, e)
			}
		}
		if n == 0 {
			return out
		}
	}
}
