package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// Targets (issue 17).
const (
	minRecall     = 0.98
	minPlates     = 0.95
	maxDoorP99    = 300 * time.Millisecond
	maxStreetP99  = time.Second
	maxDropRatio  = 0.01
	passageWindow = 3 * time.Second // passages that left in the window's last seconds are not scored
)

// collector keeps every event with the time it was published.
type collector struct {
	mu  sync.Mutex
	evs []published
}

type published struct {
	e  *event.Event
	at time.Time
}

func newCollector() *collector { return &collector{} }

func (c *collector) Publish(_ context.Context, e *event.Event) error {
	c.mu.Lock()
	c.evs = append(c.evs, published{e, time.Now()})
	c.mu.Unlock()
	return nil
}

func (c *collector) reset() {
	c.mu.Lock()
	c.evs = nil
	c.mu.Unlock()
}

func (c *collector) all() []published {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]published(nil), c.evs...)
}

// gallery enrols two identities in three as residents, from a photo camsim does not walk past
// when they have one; the others are strangers.
func gallery(mdir string) (*pipeline.Gallery, map[string]bool, error) {
	td := testdata.Dir()
	lib, err := camsim.LoadLibrary(td)
	if err != nil {
		return nil, nil, err
	}
	faces, err := dnn.NewFaces(mdir, dnn.DetectorOptions{})
	if err != nil {
		return nil, nil, err
	}
	defer faces.Close()
	g := pipeline.NewGallery(pipeline.MatchOptions{})
	residents := map[string]bool{}
	for i, id := range lib.Identities() {
		if i%3 == 2 {
			continue
		}
		photo := lib.Faces[id][0]
		for _, ph := range lib.Faces[id] {
			if !slices.Contains(lib.Walking[id], ph) {
				photo = ph
				break
			}
		}
		img, err := recognizers.LoadImage(filepath.Join(td, photo))
		if err != nil {
			return nil, nil, err
		}
		e, _, err := pipeline.EnrolFace(faces, img, pipeline.EnrolGate{})
		img.Close()
		if err == nil {
			g.Add(pipeline.Person{ID: id, Name: id, List: "residents", Embeddings: []recognizers.Embedding{e}})
			residents[id] = true
		}
	}
	return g, residents, nil
}

// result is one camera count in one configuration.
type result struct {
	n                   int
	mode                string
	scenes              []string
	window              time.Duration
	vigilCPU, camsimCPU float64 // cores
	steal               float64 // cores the hypervisor took (measure.Steal)
	sampled, gated      uint64
	still               uint64 // key frames not decoded: the coded pictures showed the scene still
	offered, dropped    uint64

	residentPassages, identified, wrong int
	strangerPassages, strangersMatched  int
	strangers                           []string // who was matched to whom
	byIdentity                          int      // events given to the overlapping passage of the identity they name
	platePassages, platesRead           int
	door, street                        []time.Duration // frame → identified event
	passagesByScene                     map[string]int
	internals                           string
	stages                              string // where face workers' time went (stageBreakdown)
	missed                              []string
}

func (r *result) dropRatio() float64 { return float64(r.dropped) / float64(max(1, r.offered)) }
func (r *result) recall() float64 {
	return float64(r.identified) / float64(max(1, r.residentPassages))
}
func (r *result) plates() float64 {
	if r.platePassages == 0 {
		return 1
	}
	return float64(r.platesRead) / float64(r.platePassages)
}

// ok says every target of the issue is met. A resident matched as another resident ("wrong") is
// printed but is not one of the targets: it comes from the face model on these photos (today's
// configuration shows it too), not from the node's load.
func (r *result) ok() bool {
	return r.accurate() && r.carried()
}

// accurate says the identity and plate targets are met: what the models make of the passages.
func (r *result) accurate() bool {
	return r.recall() >= minRecall && r.strangersMatched == 0 && r.plates() >= minPlates
}

// carried says the load targets are met: latency and drops, what the node's capacity decides.
func (r *result) carried() bool {
	return pct(r.door, 0.99) <= maxDoorP99 && pct(r.street, 0.99) <= maxStreetP99 && r.dropRatio() <= maxDropRatio
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

type passage struct {
	camsim.TruthLine
	got []*event.Event
	// scored: the passage lies in the window. The others still own their events, so that an
	// event naming someone who left just after the window (or came just before it) is not
	// taken for another's: a stranger beside them in view would count as matched.
	scored bool
}

// score matches the window's passages to events on the same camera whose first detection falls
// in the passage (with slack), as the pipeline's accuracy test does.
func (r *result) score(truthFile string, evs []published, residents map[string]bool, w0, w1 time.Time) error {
	f, err := os.Open(truthFile)
	if err != nil {
		return err
	}
	defer f.Close()
	var ps []*passage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tl camsim.TruthLine
		if json.Unmarshal(sc.Bytes(), &tl) != nil {
			continue
		}
		ps = append(ps, &passage{TruthLine: tl, scored: !tl.Enter.Before(w0) && !tl.Leave.After(w1.Add(-passageWindow))})
	}
	r.passagesByScene = map[string]int{}
	line := func(i int) *camsim.TruthLine { return &ps[i].TruthLine }
	for _, pe := range evs {
		e := pe.e
		if e.Match != nil && (pe.at.Before(w0) || pe.at.After(w1)) {
			continue
		}
		// Frame → event for identities decided while the person is in view (published with the
		// deciding frame's shot, as a door unlocks on); a passage identified only when it ended
		// counts for recall, not here.
		if e.Match != nil && e.Kind == pipeline.KindFace && e.Match.Votes >= 2 {
			lat := pe.at.Sub(e.Arrival)
			switch r.scenes[camIndex(e.Camera)] {
			case camsim.PlaceDoor:
				r.door = append(r.door, lat)
			case camsim.PlaceStreet:
				r.street = append(r.street, lat)
			}
		}
		if i := camsim.Owner(len(ps), line, e, true); i >= 0 {
			ps[i].got = append(ps[i].got, e)
			if camsim.Owner(len(ps), line, e, false) != i {
				r.byIdentity++ // by time alone it would have gone to another passage that overlaps
			}
		}
	}
	for _, p := range ps {
		if !p.scored {
			continue
		}
		r.passagesByScene[p.Scene]++
		switch {
		case p.Kind == "plate":
			r.platePassages++
			read := false
			var texts []string
			for _, e := range p.got {
				if e.Plate != nil {
					read = read || e.Plate.Text == p.Plate
					texts = append(texts, e.Plate.Text)
				}
			}
			if read {
				r.platesRead++
			} else {
				r.missed = append(r.missed, fmt.Sprintf("%s (%s) plate %s read as %q", p.Camera, p.Scene, p.Plate, texts))
			}
		case residents[p.Identity]:
			r.residentPassages++
			ok := false
			for _, e := range p.got {
				if e.Match != nil && e.Match.PersonID == p.Identity {
					ok = true
				} else if e.Match != nil {
					r.wrong++
				}
			}
			for _, e := range p.got {
				if e.Match != nil && e.Match.PersonID != p.Identity {
					r.missed = append(r.missed, fmt.Sprintf("%s (%s) %s %dpx matched as %s (%s)", p.Camera, p.Scene, p.Identity, p.Size, e.Match.PersonID, matchFigures(e.Match)))
				}
			}
			if ok {
				r.identified++
			} else {
				r.missed = append(r.missed, fmt.Sprintf("%s (%s) %s %dpx %d events", p.Camera, p.Scene, p.Identity, p.Size, len(p.got)))
			}
		default:
			r.strangerPassages++
			for _, e := range p.got {
				if e.Match != nil {
					r.strangersMatched++
					r.strangers = append(r.strangers, fmt.Sprintf("%s (%s) %s %dpx as %s (%s)", p.Camera, p.Scene, p.Identity, p.Size, e.Match.PersonID, matchFigures(e.Match)))
				}
			}
		}
	}
	return nil
}

func (r *result) print() {
	verdict := "all targets met"
	switch {
	case !r.carried() && !r.accurate():
		verdict = "load and accuracy targets failed"
	case !r.carried():
		verdict = "a load target failed (latency or drops)"
	case !r.accurate():
		verdict = "an accuracy target failed (the node kept up)"
	}
	fmt.Printf("%-10s %3d cameras (%d street, %d door, %d gate): passages %v; residents identified %d/%d (%.3f), wrong %d, strangers matched %d/%d, plates read %d/%d; door frame→event p99 %v (%d; p50 %v, p90 %v), street p99 %v (%d); sampled %.0f/s, gated %.0f%%, still key frames not decoded %.0f/s, dropped %.2f%% of %d offered; vigil CPU %.0f%% of a core (%.2f%% per camera), camsim %.0f%%, stolen %.0f%%: %s\n",
		r.mode, r.n, count(r.scenes, camsim.PlaceStreet), count(r.scenes, camsim.PlaceDoor), count(r.scenes, camsim.PlaceGate), r.passagesByScene,
		r.identified, r.residentPassages, r.recall(), r.wrong, r.strangersMatched, r.strangerPassages, r.platesRead, r.platePassages,
		pct(r.door, 0.99).Round(time.Millisecond), len(r.door), pct(r.door, 0.5).Round(time.Millisecond), pct(r.door, 0.9).Round(time.Millisecond),
		pct(r.street, 0.99).Round(time.Millisecond), len(r.street),
		float64(r.sampled)/r.window.Seconds(), 100*float64(r.gated)/float64(max(1, r.sampled)), float64(r.still)/r.window.Seconds(), 100*r.dropRatio(), r.offered,
		100*r.vigilCPU, 100*r.vigilCPU/float64(r.n), 100*r.camsimCPU, 100*r.steal, verdict)
	fmt.Printf("           pipeline: %s; events given to an overlapping passage of the person they name (nearest by time was another's) %d\n", r.internals, r.byIdentity)
	if r.stages != "" {
		fmt.Printf("           time per stage, %s\n", r.stages)
	}
	if len(r.missed) > 0 {
		fmt.Printf("           missed or matched wrongly (residents, plates): %s\n", strings.Join(r.missed[:min(len(r.missed), 8)], "; "))
	}
	if len(r.strangers) > 0 {
		fmt.Printf("           strangers matched: %s\n", strings.Join(r.strangers[:min(len(r.strangers), 8)], "; "))
	}
}

func count(s []string, what string) int {
	n := 0
	for _, x := range s {
		if x == what {
			n++
		}
	}
	return n
}

// matchFigures is a face match's distance, margin over the runner-up and votes.
func matchFigures(m *event.Match) string {
	return fmt.Sprintf("distance %.3f, margin %.3f, %d votes", m.Distance, m.Margin, m.Votes)
}
