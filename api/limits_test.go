package api

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
