package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/pipeline"
)

// TestScoreEdgePassagesOwnTheirEvents: a resident who leaves in the window's last seconds is not
// scored, but the event naming them is still theirs: it is not counted as a stranger matched
// because a stranger was in view beside them (the site bench's 105-camera windows counted
// sundar_pichai as matched to chaeyeon_dia this way, on cam026, where both passed together).
func TestScoreEdgePassagesOwnTheirEvents(t *testing.T) {
	w0 := time.Date(2026, 12, 2, 22, 29, 25, 0, time.UTC)
	w1 := w0.Add(90 * time.Second)
	at := func(s float64) time.Time { return w0.Add(time.Duration(s * float64(time.Second))) }
	lines := []camsim.TruthLine{
		{Camera: "cam001", Kind: pipeline.KindFace, Scene: camsim.PlaceStreet, Identity: "sundar_pichai", Size: 95, Enter: at(84.3), Leave: at(86.6)},
		{Camera: "cam001", Kind: pipeline.KindFace, Scene: camsim.PlaceStreet, Identity: "chaeyeon_dia", Size: 80, Enter: at(84.9), Leave: at(87.5)},
		{Camera: "cam001", Kind: pipeline.KindFace, Scene: camsim.PlaceStreet, Identity: "obama", Size: 90, Enter: at(10), Leave: at(13)},
	}
	file := filepath.Join(t.TempDir(), "truth.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	ev := func(person string, first float64) published {
		return published{at: at(first + 0.3), e: &event.Event{Camera: "cam001", Kind: pipeline.KindFace, First: at(first), Arrival: at(first),
			Match: &event.Match{PersonID: person, Votes: 2, Distance: 0.45}}}
	}
	r := &result{scenes: []string{camsim.PlaceStreet}}
	residents := map[string]bool{"chaeyeon_dia": true, "obama": true}
	if err := r.score(file, []published{ev("chaeyeon_dia", 85.1), ev("obama", 11)}, residents, w0, w1); err != nil {
		t.Fatal(err)
	}
	if r.strangersMatched != 0 || r.strangerPassages != 1 {
		t.Errorf("strangers matched %d of %d passages, want 0 of 1 (%v)", r.strangersMatched, r.strangerPassages, r.strangers)
	}
	if r.identified != 1 || r.residentPassages != 1 {
		t.Errorf("residents identified %d of %d, want 1 of 1: the resident who left at the window's end is not scored", r.identified, r.residentPassages)
	}
}

// TestCeilingOf: the twenty-first machine's profile at 105 cameras (0.52 cores of decodes and
// models, 0.187 of RTSP ingest, camsim 0.2016) makes 0.866% of a core a camera, 231 cameras.
func TestCeilingOf(t *testing.T) {
	per, n := ceilingOf(0.52, 0.187, 0.2016, 105)
	if math.Abs(per-0.008653) > 1e-5 || math.Round(n) != 231 {
		t.Fatalf("ceiling %.6f a camera, %.1f cameras; want 0.008653, 231", per, n)
	}
	if _, n := ceilingOf(0, 0, 0, 0); math.IsInf(n, 0) || math.IsNaN(n) {
		t.Fatalf("no work: %v cameras", n)
	}
}
