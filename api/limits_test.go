package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/quota"
)

// TestStalledClipReaderLetsGo: a client that stops reading a long answer is cut off once one
// write has waited the window, so it gives its clip slot back instead of holding it for the
// whole download.
func TestStalledClipReaderLetsGo(t *testing.T) {
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &progressWriter{w: w, rc: http.NewResponseController(w), window: 300 * time.Millisecond}
		chunk := make([]byte, 1<<20)
		for range 512 {
			if _, err := pw.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
		ended <- nil
	}))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) // and never read
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("512 MB written to a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write to a stalled client never gave up")
	}
}

// TestClipsPerPrincipal: one principal holds at most clipsPerPrincipal clips.
func TestClipsPerPrincipal(t *testing.T) {
	var p quota.PerKey
	for i := range clipsPerPrincipal {
		if !p.Take("7", clipsPerPrincipal) {
			t.Fatalf("clip %d refused", i)
		}
	}
	if p.Take("7", clipsPerPrincipal) {
		t.Fatal("a principal took more clips than its share")
	}
	if !p.Take("8", clipsPerPrincipal) {
		t.Fatal("another principal was refused")
	}
	p.Give("7")
	if !p.Take("7", clipsPerPrincipal) {
		t.Fatal("a clip given back was not free again")
	}
}

// blockedStarts is footage whose clip starts take until release is closed.
type blockedStarts struct {
	Footage
	began   chan struct{}
	release chan struct{}
}

func (b blockedStarts) ClipStart(ctx context.Context, camera string, from, to time.Time) (time.Time, error) {
	b.began <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return from, nil
}

// TestStillsPerPrincipal: one principal has at most stillsPerPrincipal clip starts (and stills)
// under way; the next is answered 429 with Retry-After at once, without taking a clip slot,
// while another principal still gets its answer.
func TestStillsPerPrincipal(t *testing.T) {
	b := blockedStarts{began: make(chan struct{}, 16), release: make(chan struct{})}
	s := &Server{clipSlots: make(chan struct{}, clipSlots), clips: b, log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cameras/{id}/footage/start", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.Header.Get("X-Principal"), 10, 64)
		s.footageStart(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, &auth.Principal{ID: id, Role: auth.RoleInvestigator})))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	to := time.Now().UTC()
	url := srv.URL + "/v1/cameras/cam001/footage/start?from=" + to.Add(-time.Minute).Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	get := func(who string) *http.Response {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Principal", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		resp.Body.Close()
		return resp
	}
	done := make(chan int, stillsPerPrincipal+1)
	for range stillsPerPrincipal {
		go func() {
			if r := get("7"); r != nil {
				done <- r.StatusCode
			}
		}()
		<-b.began
	}
	if r := get("7"); r == nil || r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a start past the principal's share: %+v", r)
	}
	if len(s.clipSlots) != stillsPerPrincipal {
		t.Fatalf("%d clip slots held, want %d (the refused start took none)", len(s.clipSlots), stillsPerPrincipal)
	}
	go func() {
		if r := get("8"); r != nil {
			done <- r.StatusCode
		}
	}()
	<-b.began // another principal's start is under way too
	close(b.release)
	for range stillsPerPrincipal + 1 {
		if code := <-done; code != http.StatusOK {
			t.Fatalf("a start within its share: %d", code)
		}
	}
	if r := get("7"); r == nil || r.StatusCode != http.StatusOK {
		t.Fatalf("a start after the others ended: %+v", r)
	}
}
