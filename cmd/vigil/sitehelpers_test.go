package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
)

// startCamsim serves cams cameras of camsim's small shared clip on a free loopback port until
// the test ends, and returns the address.
func startCamsim(t *testing.T, cams int) string {
	t.Helper()
	return startCamsimTruth(t, cams, nil)
}

// startCamsimTruth is startCamsim writing camsim's ground truth to tw (nil: none).
func startCamsimTruth(t *testing.T, cams int, tw *camsim.TruthWriter) string {
	t.Helper()
	clip, err := camsim.SharedSmallClip(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddrT(t)
	sim, err := camsim.NewServer(camsim.Config{RTSPAddress: addr, Cameras: cams, Truth: tw}, []*camsim.Clip{clip}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		err = sim.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return addr
}

// tokenClient makes a token of role (vigil token create against VIGIL_DATABASE_URL) and
// returns a client that sends it.
func tokenClient(t *testing.T, role, name, data string) *http.Client {
	t.Helper()
	code, out, errs := runCmd("token", "create", "--role", role, "--name", name, "--data", data)
	if code != 0 {
		t.Fatalf("token create --role %s: %s", role, errs)
	}
	return &http.Client{Transport: bearer{strings.TrimSpace(out)}}
}
