package camsim

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// TruthLine is one passage seen by one camera: who or what, and when it was wholly in view.
type TruthLine struct {
	Camera   string    `json:"camera"` // cam001 for /cam/001, as the demo names cameras
	Path     string    `json:"path"`
	Kind     string    `json:"kind"`
	Scene    string    `json:"scene,omitempty"` // street, door or gate with --activity site
	Identity string    `json:"identity,omitempty"`
	Plate    string    `json:"plate,omitempty"`
	Size     int       `json:"size"`
	Enter    time.Time `json:"enter"`
	Leave    time.Time `json:"leave"`
	// Partial: the camera started with the passage already wholly in view (Enter is the start).
	Partial bool `json:"partial,omitempty"`
}

// TruthWriter writes JSON lines, safe for concurrent use, flushed every second and on Close.
type TruthWriter struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	enc  *json.Encoder
	last time.Time
	n    int
}

// NewTruthWriter writes to w.
func NewTruthWriter(w io.Writer) *TruthWriter {
	bw := bufio.NewWriter(w)
	return &TruthWriter{bw: bw, enc: json.NewEncoder(bw)}
}

// Write records that the camera at path (of scene, when the fleet models a site) sees e wholly
// from enter on.
func (t *TruthWriter) Write(path, scene string, e *Event, enter time.Time) {
	t.write(TruthLine{Camera: "cam" + strings.TrimPrefix(path, "/cam/"), Path: path, Kind: e.Kind, Scene: scene, Identity: e.Identity, Plate: e.Plate, Size: e.Size,
		Enter: enter.UTC(), Leave: enter.Add(time.Duration((e.Leave - e.Enter) * float64(time.Second))).UTC()})
}

// WritePartial records a passage already in view when the camera started, from start to leave.
func (t *TruthWriter) WritePartial(path string, e *Event, start, leave time.Time) {
	t.write(TruthLine{Camera: "cam" + strings.TrimPrefix(path, "/cam/"), Path: path, Kind: e.Kind, Identity: e.Identity, Plate: e.Plate, Size: e.Size,
		Enter: start.UTC(), Leave: leave.UTC(), Partial: true})
}

func (t *TruthWriter) write(line TruthLine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_ = t.enc.Encode(line)
	t.n++
	if time.Since(t.last) > time.Second {
		_ = t.bw.Flush()
		t.last = time.Now()
	}
}

// Lines returns how many lines were written.
func (t *TruthWriter) Lines() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Flush writes buffered lines out.
func (t *TruthWriter) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bw.Flush()
}

// Owner returns the index of the passage, among n lines, that event e belongs to, or -1: the
// passage on the event's camera, of its kind, whose entry is nearest to the event's first
// detection (from 1.5 s before the entry, as detection starts before a face is wholly in view,
// to 1 s after it left). When passages overlap (a group, or one person right after another) and
// byName is set, one of the person or plate the event names (the plate it read, else its match's)
// comes first, so that an event of one member of a group is not scored as the other's; without
// byName, the nearest by time.
func Owner(n int, line func(int) *TruthLine, e *event.Event, byName bool) int {
	person, plate := "", ""
	if byName && e.Match != nil {
		person, plate = e.Match.PersonID, e.Match.Plate
	}
	if byName && e.Plate != nil {
		plate = e.Plate.Text
	}
	best, bestSame := -1, false
	var bestD time.Duration
	for i := range n {
		p := line(i)
		if e.Camera != p.Camera || e.Kind != p.Kind || e.First.Before(p.Enter.Add(-1500*time.Millisecond)) || e.First.After(p.Leave.Add(time.Second)) {
			continue
		}
		same := person != "" && person == p.Identity || plate != "" && plate == p.Plate
		d := e.First.Sub(p.Enter).Abs()
		if best < 0 || same && !bestSame || same == bestSame && d < bestD {
			best, bestD, bestSame = i, d, same
		}
	}
	return best
}
