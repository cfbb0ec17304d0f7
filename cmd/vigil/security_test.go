package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestRevocationEndsLiveStreams: a principal holds at most 8 event streams; when its token is
// revoked (by the CLI, another process) its open streams end within 2 s and the token is refused
// at once, not after the cache's TTL.
func TestRevocationEndsLiveStreams(t *testing.T) {
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	cfg := nodeConfig(t, dbURL)
	cfg.Pipeline.Enabled, cfg.Footage.Enabled, cfg.Live.Enabled = false, false, false
	code, out, errs := runCmd("token", "create", "--role", "operator", "--name", "post 7", "--data", cfg.Data)
	if code != 0 {
		t.Fatalf("token: %s", errs)
	}
	token := strings.TrimSpace(out)
	n := startNode(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", n.URL+"/v1/events/live", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return http.DefaultClient.Do(req)
	}
	var streams []*http.Response
	for i := range 8 {
		r, err := open()
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, r.StatusCode, err)
		}
		bufio.NewReader(r.Body).ReadString('\n') // the banner: the stream is registered
		streams = append(streams, r)
	}
	if r, err := open(); err != nil || r.StatusCode != 429 {
		t.Fatalf("a ninth stream: %v %v, want 429", r.StatusCode, err)
	}
	ended := make(chan struct{}, len(streams))
	for _, r := range streams {
		go func() {
			sc := bufio.NewScanner(r.Body)
			for sc.Scan() {
			}
			ended <- struct{}{}
		}()
	}
	t0 := time.Now()
	if code, _, errs := runCmd("token", "revoke", "--name", "post 7", "--data", cfg.Data); code != 0 {
		t.Fatalf("revoke: %s", errs)
	}
	for range streams {
		select {
		case <-ended:
		case <-time.After(2*time.Second - time.Since(t0)):
			t.Fatal("a revoked principal's stream is still open after 2 s")
		}
	}
	if r, _ := open(); r.StatusCode != 401 {
		t.Fatalf("the revoked token: %d, want 401", r.StatusCode)
	}
}
