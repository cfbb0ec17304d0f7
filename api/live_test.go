package api

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// fakeBus delivers what the test publishes to every subscriber (the API subscribes once).
type fakeBus struct {
	mu   sync.Mutex
	subs []func(string, []byte)
}

func (f *fakeBus) Subscribe(_ string, fn func(string, []byte)) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, fn)
	return func() {}, nil
}

func (f *fakeBus) publish(data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fn := range f.subs {
		fn("vigil.events.x.y", data)
	}
}

func TestLiveEventsFanOutFiltersAndSnapshots(t *testing.T) {
	fb := &fakeBus{}
	a, err := New(Deps{Cameras: fakeCameras{}, Events: fb, Registry: prometheus.NewRegistry(), Open: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.subs) != 1 {
		t.Fatalf("%d bus subscriptions, want one for all viewers", len(fb.subs))
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func(query string) *bufio.Scanner {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events/live"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", query, resp, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		sc := bufio.NewScanner(resp.Body)
		sc.Scan() // the greeting comment
		return sc
	}
	next := func(sc *bufio.Scanner) string {
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "data: ") {
				return l
			}
		}
		t.Fatal("stream ended")
		return ""
	}
	all, gate, plates := open(""), open("?camera=gate"), open("?kind=plate")
	for ctx.Err() == nil { // wait until the three viewers are registered
		a.live.mu.Lock()
		n := len(a.live.viewers)
		a.live.mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	jpeg := []byte{0xff, 0xd8, 0xff, 0xe0, 1, 2, 3}
	e1 := &event.Event{ID: "e1", Kind: "face", Camera: "gate", Time: time.Now(), Embedding: make([]byte, 512), Snapshot: jpeg}
	fb.publish(e1.Pack())
	fb.publish([]byte(`{"id":"e2","kind":"plate","camera":"alley","time":"2026-11-30T08:00:00Z","snapshot":"/9j/"}`)) // plain JSON, base64 snapshot
	fb.publish([]byte{0x01, 0xff})                                                                                    // garbage: skipped

	if l := next(all); !strings.Contains(l, `"id":"e1"`) || !strings.Contains(l, `"snapshot_url":"/v1/events/e1/snapshot"`) || strings.Contains(l, "embedding") {
		t.Fatalf("all, first: %s", l)
	}
	if l := next(all); !strings.Contains(l, `"id":"e2"`) {
		t.Fatalf("all, second: %s", l)
	}
	if l := next(gate); !strings.Contains(l, `"id":"e1"`) {
		t.Fatalf("gate: %s", l)
	}
	if l := next(plates); !strings.Contains(l, `"id":"e2"`) {
		t.Fatalf("plates: %s", l)
	}
	resp, err := http.Get(srv.URL + "/v1/events/e1/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(jpeg) {
		t.Fatalf("snapshot: %d %x", resp.StatusCode, body)
	}
	if resp, _ := http.Get(srv.URL + "/v1/events/live?kind=bogus"); resp.StatusCode != 400 {
		t.Fatalf("bad kind: %d", resp.StatusCode)
	}
}
