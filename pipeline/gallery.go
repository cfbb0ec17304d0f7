// Package pipeline turns decoded frames into events: per-camera analysers sample frames and gate
// them on motion, worker pools run the recognizers, trackers turn a passage into one event with
// its best shot, and the matcher attaches identities from the galleries before the event goes
// on the bus.
package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

// Person is someone in a gallery: a resident, or an entry on a watchlist.
type Person struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	List       string                  `json:"list"` // "residents" or a watchlist's name
	Embeddings []recognizers.Embedding `json:"embeddings"`
	Sources    []string                `json:"sources,omitempty"` // where each embedding came from
}

// ListedPlate is a plate on a list (blacklist, residents' cars).
type ListedPlate struct {
	Text string `json:"text"`
	List string `json:"list"`
	Note string `json:"note,omitempty"`
}

// MatchOptions set when a face counts as a person.
type MatchOptions struct {
	// Space is the embedding space the gallery holds; embeddings of any other are refused.
	// Default space.DefaultSpace.
	Space recognizers.Space
	// Threshold: distances below it may match. Default the space's Possible distance.
	Threshold float32
	// Margin: the runner-up person must be at least this much farther, or the match is refused
	// as ambiguous. Default the space's Margin.
	Margin float32
}

func (o *MatchOptions) defaults() {
	if o.Space.Name == "" {
		o.Space = space.DefaultSpace
	}
	if o.Threshold == 0 {
		o.Threshold = o.Space.Possible
	}
	if o.Margin == 0 {
		o.Margin = o.Space.Margin
	}
}

// Gallery is the in-memory index of enrolled faces and listed plates. It is safe for concurrent
// use: matching takes a read lock; enrolment a write lock.
type Gallery struct {
	opts MatchOptions

	mu     sync.RWMutex
	people []Person
	plates map[string]ListedPlate
	// flat is every embedding in one slice, with owner indexes, for a cache-friendly scan.
	flat  []recognizers.Embedding
	owner []int
	// negatives are faces operators said are not the person (wrong verdicts), by person id.
	negatives map[string][]recognizers.Embedding
}

// NegativeMargin is how much nearer a face must be to one of a person's negative samples than
// to the person's own nearest template for the matcher to refuse that person: a look-alike
// already corrected is refused, the person themself (nearer their templates) still matches.
const NegativeMargin = 0.05

// NewGallery returns an empty gallery.
func NewGallery(opts MatchOptions) *Gallery {
	opts.defaults()
	return &Gallery{opts: opts, plates: map[string]ListedPlate{}, negatives: map[string][]recognizers.Embedding{}}
}

// Space is the embedding space the gallery holds.
func (g *Gallery) Space() recognizers.Space { return g.opts.Space }

// Add enrols or extends a person (by ID) and reindexes. Embeddings of another space (another
// length) are dropped: two spaces are never compared.
func (g *Gallery) Add(p Person) {
	p.Embeddings = g.inSpace(p.Embeddings)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.people {
		if g.people[i].ID == p.ID {
			g.people[i].Embeddings = append(g.people[i].Embeddings, p.Embeddings...)
			g.people[i].Sources = append(g.people[i].Sources, p.Sources...)
			g.reindex()
			return
		}
	}
	g.people = append(g.people, p)
	g.reindex()
}

// AddPlate lists a plate.
func (g *Gallery) AddPlate(p ListedPlate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.plates[plate.Normalize(p.Text)] = p
}

func (g *Gallery) inSpace(es []recognizers.Embedding) []recognizers.Embedding {
	kept := es[:0:0]
	for _, e := range es {
		if g.opts.Space.Check(e) == nil {
			kept = append(kept, e)
		}
	}
	return kept
}

func (g *Gallery) reindex() {
	g.flat, g.owner = g.flat[:0], g.owner[:0]
	for i, p := range g.people {
		for _, e := range p.Embeddings {
			g.flat = append(g.flat, e)
			g.owner = append(g.owner, i)
		}
	}
}

// People returns a copy of the enrolled people, sorted by name.
func (g *Gallery) People() []Person {
	g.mu.RLock()
	out := append([]Person(nil), g.people...)
	g.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MatchFace finds the enrolled person nearest to e. It returns nil when nobody is under the
// threshold or when two people are too close to tell apart. One person (one id) may be on several
// lists (a resident with door credentials, a watch-listed resident): the entries are one person
// for the margin, and the match names the list that matters most (a watch list, then the access
// templates, then the residents).
func (g *Gallery) MatchFace(e recognizers.Embedding) *event.Match {
	g.mu.RLock()
	defer g.mu.RUnlock()
	type near struct {
		d     float32
		entry int // the entry of g.people the match names
	}
	best := map[string]near{} // person id → nearest distance
	for i := range g.flat {
		d := recognizers.Distance(g.flat[i], e)
		p := g.people[g.owner[i]]
		cur, ok := best[p.ID]
		switch {
		case !ok:
			best[p.ID] = near{d, g.owner[i]}
		default:
			if listRank(p.List) > listRank(g.people[cur.entry].List) {
				cur.entry = g.owner[i]
			}
			cur.d = min(cur.d, d)
			best[p.ID] = cur
		}
	}
	for id, negs := range g.negatives { // the few people with wrong verdicts, not the whole gallery
		n, ok := best[id]
		if !ok {
			continue
		}
		for _, neg := range negs {
			if recognizers.Distance(neg, e) < n.d-NegativeMargin {
				delete(best, id) // an operator said a face like this is not them
				break
			}
		}
	}
	first, second := "", ""
	for id, n := range best {
		switch {
		case first == "" || n.d < best[first].d:
			first, second = id, first
		case second == "" || n.d < best[second].d:
			second = id
		}
	}
	if first == "" || best[first].d >= g.opts.Threshold {
		return nil
	}
	p := g.people[best[first].entry]
	m := &event.Match{PersonID: p.ID, Name: p.Name, List: p.List, Distance: best[first].d}
	if second != "" {
		m.Margin = best[second].d - best[first].d
		if m.Margin < g.opts.Margin {
			return nil
		}
	}
	return m
}

// Verdict effects ApplyVerdict reports.
const (
	VerdictNegative = "negative"  // the face no longer matches the person it was taken for
	VerdictTemplate = "template"  // the face was added to a watch-list entry's templates
	VerdictNone     = "no_effect" // recorded only (a correct verdict, or a template for someone not on a watch list)
)

// ApplyVerdict takes an operator's verdict on a face matched to matched: wrong and this_is make
// the face a negative sample of matched; a template offered for a correct verdict (the face is
// matched) or a this_is one (the face is person) is added only when that person is on a watch
// list here: never to the residents or the access templates, which change only by enrolment
// with consent. It returns the effects.
func (g *Gallery) ApplyVerdict(matched, verdict, person string, template bool, e recognizers.Embedding) []string {
	if g.opts.Space.Check(e) != nil {
		return []string{VerdictNone} // another space's face is never compared
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	if (verdict == "wrong" || verdict == "this_is") && matched != "" {
		if len(g.negatives[matched]) < maxNegatives {
			g.negatives[matched] = append(g.negatives[matched], e)
		}
		out = append(out, VerdictNegative)
	}
	to := matched
	if verdict == "this_is" {
		to = person
	}
	if template && verdict != "wrong" && to != "" {
		for i := range g.people {
			if p := &g.people[i]; p.ID == to && listRank(p.List) == 2 {
				p.Embeddings = append(p.Embeddings, e)
				p.Sources = append(p.Sources, "verdict")
				g.reindex()
				out = append(out, VerdictTemplate)
				break
			}
		}
	}
	if len(out) == 0 {
		out = append(out, VerdictNone)
	}
	return out
}

// maxNegatives bounds one person's negative samples (each costs every match a comparison).
const maxNegatives = 256

// listRank orders the lists one person may be on by what a match must say: a watch list first
// (an alert), then the access templates (a door), then the residents.
func listRank(list string) int {
	switch list {
	case "residents":
		return 0
	case access.AccessList:
		return 1
	}
	return 2
}

// MatchPlate looks a plate up exactly.
func (g *Gallery) MatchPlate(text string) *event.Match {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if p, ok := g.plates[plate.Normalize(text)]; ok {
		return &event.Match{Plate: p.Text, List: p.List}
	}
	return nil
}

// ErrOtherSpace means a gallery file was made by another face model than the node's.
var ErrOtherSpace = errors.New("gallery: embeddings of another face model")

// GalleryFile is the on-disk form of a gallery, until people move into PostgreSQL with access control.
type GalleryFile struct {
	// Model is the embedding space of every embedding in the file; "" in files written before
	// spaces were named (dlib-v1).
	Model  string        `json:"model"`
	People []Person      `json:"people"`
	Plates []ListedPlate `json:"plates"`
}

// ReadGalleryFile reads a gallery file as it is, whatever its model; a missing file is empty.
func ReadGalleryFile(path string) (GalleryFile, error) {
	var f GalleryFile
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("gallery %s: %w", path, err)
	}
	if f.Model == "" {
		f.Model = space.DlibV1.Name
	}
	return f, nil
}

// Load reads a gallery file; a missing file is an empty gallery. A file of another model is
// refused (ErrOtherSpace): its people must be described again first.
func (g *Gallery) Load(path string) error {
	f, err := ReadGalleryFile(path)
	if err != nil {
		return err
	}
	if f.Model != g.opts.Space.Name && len(f.People) > 0 {
		return fmt.Errorf("%w: %s holds %s embeddings and this node embeds faces with %s; run "+
			"`vigil enroll --reembed --gallery %s` to describe everyone again from their enrolment photos",
			ErrOtherSpace, path, f.Model, g.opts.Space.Name, path)
	}
	for _, p := range f.People {
		g.Add(p)
	}
	for _, p := range f.Plates {
		g.AddPlate(p)
	}
	return nil
}

// Save writes the gallery atomically (temp file + rename).
func (g *Gallery) Save(path string) error {
	g.mu.RLock()
	f := GalleryFile{Model: g.opts.Space.Name, People: g.people}
	for _, p := range g.plates {
		f.Plates = append(f.Plates, p)
	}
	g.mu.RUnlock()
	sort.Slice(f.Plates, func(i, j int) bool { return f.Plates[i].Text < f.Plates[j].Text })
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil { // biometric data: owner only
		return err
	}
	return os.Rename(tmp, path)
}

// SetList replaces every person on list with people (the access-control residents follow their
// enrolments and erasures this way).
func (g *Gallery) SetList(list string, people []Person) {
	g.mu.Lock()
	defer g.mu.Unlock()
	kept := g.people[:0]
	for _, p := range g.people {
		if p.List != list {
			kept = append(kept, p)
		}
	}
	for _, p := range people {
		p.List = list
		kept = append(kept, p)
	}
	g.people = kept
	g.reindex()
}

// Templates is where enrolled residents' face templates live (access.Engine).
type Templates interface {
	FaceTemplates() (persons []string, embeddings [][]float32)
	OnReload(fn func())
}

// FollowTemplates keeps the gallery's "access" list equal to the enrolled residents' face
// templates, now and after every change to them. It is a list of its own: the JSON gallery's
// residents and watchlists stay.
func (g *Gallery) FollowTemplates(src Templates) {
	sync := func() {
		persons, embs := src.FaceTemplates()
		at := map[string]int{}
		var people []Person
		for i, p := range persons {
			j, ok := at[p]
			if !ok {
				j = len(people)
				at[p] = j
				people = append(people, Person{ID: p, Name: p})
			}
			people[j].Embeddings = append(people[j].Embeddings, recognizers.Embedding(embs[i]))
		}
		g.SetList(access.AccessList, people)
	}
	sync()
	src.OnReload(sync)
}
