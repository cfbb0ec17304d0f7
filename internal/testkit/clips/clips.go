// Package clips gives tests camsim's small clip (real H.264: one face, one plate) and its access
// units as a session would deliver them.
package clips

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/streams"
)

// Small returns camsim's small 320×240 clip, built once and cached for every test run; without
// the shared test photos it is testenv.Missing.
func Small(t testing.TB) *camsim.Clip {
	t.Helper()
	c, err := camsim.SharedSmallClip(context.Background())
	if errors.Is(err, camsim.ErrNoTestdata) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Units turns a clip into the H.264 units a session would deliver (parameter sets in front of
// key frames), a frame interval apart in PTS, and in arrival from arrival when it is not zero.
func Units(c *camsim.Clip, arrival time.Time) []*streams.Unit {
	var out []*streams.Unit
	for i, au := range c.Units {
		key := false
		for _, n := range au {
			key = key || n[0]&0x1f == 5
		}
		pts := time.Duration(i) * time.Second / time.Duration(c.Params.FPS)
		u := &streams.Unit{Codec: streams.H264, PTS: pts, NALUs: au, Key: key}
		if !arrival.IsZero() {
			u.Arrival = arrival.Add(pts)
		}
		out = append(out, u)
	}
	return out
}
