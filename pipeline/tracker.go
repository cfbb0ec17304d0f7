package pipeline

import (
	"image"
	"math"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// FaceDet is one face found in one frame, as the workers hand it to the tracker.
type FaceDet struct {
	dnn.FaceResult
	Crop *Crop
}

// PlateDet is one plate found in one frame.
type PlateDet struct {
	dnn.Plate
	Crop *Crop
}

// Observation is what the workers found in one frame of one camera.
type Observation struct {
	Camera  string
	Seq     uint64
	PTS     time.Duration // stream time: tracks age by it, so a stalled camera does not end them
	Time    time.Time     // wall time of the frame
	Arrival time.Time
	Width   int
	Height  int
	Faces   []FaceDet
	Plates  []PlateDet
	// Undescribed counts the faces found but not described (their passages were published).
	Undescribed int
	// Coarse: described on the sub-stream picture scaled up (the main stream's shot missed):
	// such embeddings put strangers near residents, so they identify only at VeryLikely.
	Coarse bool
	// Kind says which recognizer produced it: KindFace or KindPlate.
	Kind string
	// timer records how long the worker's stages took (its pool's, of the frame's rank; nil:
	// nothing is recorded).
	timer *stageTimer
}

// since records the time since t0 as stage s of the observation's frame (Metrics.stages).
func (o *Observation) since(s int, t0 time.Time) { o.timer.observe(s, time.Since(t0)) }

// TrackerOptions tune how detections become passages.
type TrackerOptions struct {
	// Gap ends a track not seen for this long in stream time, once it has also been missing
	// from MinMisses analysed frames (under overload frames are dropped, and a passage must not
	// split because its frames were). Default 1.5 s.
	Gap time.Duration
	// MinMisses: see Gap. Default 2.
	MinMisses int
	// SameFace is the embedding distance under which a detection continues a track. Default the
	// gallery's space's Track distance.
	SameFace float32
	// EarlyMatches: a face track is published as soon as this many of its detections matched the
	// same person (door cameras need the identity now, not when the passage ends; a door opens
	// only on a passage whose frames agree, so one frame is never enough). Default 2.
	EarlyMatches int
	// EarlyPlateVotes: a plate track is published once the same valid text was read this often.
	// Default 2.
	EarlyPlateVotes int
	// RestAfter: a face track described this often without any description matching anyone
	// (a stranger, most likely) rests: its face is described again only every Reverify, or
	// sooner when it is found RestGrowth times the height of the largest face described on it
	// (someone walking up to the camera: a better shot, a better chance to be recognised).
	// Between, a face found where it is keeps it going undescribed, as a published passage's
	// does (Settled). Default 3; negative: never.
	RestAfter int
}

// RestGrowth is how much bigger than its largest described face a resting track's face must be
// found to be described before its Reverify (TrackerOptions.RestAfter).
const RestGrowth = 1.25

func (o *TrackerOptions) defaults() {
	if o.Gap == 0 {
		o.Gap = 1500 * time.Millisecond
	}
	if o.MinMisses == 0 {
		o.MinMisses = 2
	}
	if o.EarlyMatches == 0 {
		o.EarlyMatches = 2
	}
	if o.EarlyPlateVotes == 0 {
		o.EarlyPlateVotes = 2
	}
	if o.RestAfter == 0 {
		o.RestAfter = 3
	}
}

// Tracker turns one camera's detections into one event per passage. It is owned by one
// goroutine; emit is called from it.
type Tracker struct {
	camera  string
	opts    TrackerOptions
	gallery *Gallery
	space   space.Space
	emit    func(*event.Event)
	nextID  uint64
	faces   []*faceTrack
	plates  []*plateTrack
	lastPTS time.Duration
}

type shot struct {
	pts     time.Duration
	time    time.Time
	arrival time.Time
	box     recognizers.Box
	quality float32
	crop    *Crop
}

type faceTrack struct {
	id      uint64
	first   time.Time
	last    time.Duration
	lastBox recognizers.Box
	lastAt  image.Point // the size of lastBox's picture
	lastEmb recognizers.Embedding
	coarse  bool // lastEmb was described on a scaled-up sub-stream picture
	hits    int
	best    shot
	bestRes dnn.FaceResult
	misses  int            // analysed face frames since last seen
	votes   map[string]int // person id → matched detections
	matches map[string]*event.Match
	emitted bool
	// described is the stream time of the last detection described (embedded) on this track,
	// descs how many were, and tallest the largest height of those faces, a fraction of the
	// picture (RestAfter).
	described time.Duration
	descs     int
	tallest   float32
	vel       [2]float32 // how fast lastBox moved, pixels a second (settled faces are looked for ahead)
}

// NewTracker returns a tracker for camera that matches against gallery and calls emit.
func NewTracker(camera string, gallery *Gallery, opts TrackerOptions, emit func(*event.Event)) *Tracker {
	opts.defaults()
	sp := space.DefaultSpace
	if gallery != nil {
		sp = gallery.Space()
	}
	if opts.SameFace == 0 {
		opts.SameFace = sp.Track
	}
	return &Tracker{camera: camera, opts: opts, gallery: gallery, emit: emit, space: sp}
}

// Active reports whether any passage is in progress (the motion gate keeps sampling then).
func (t *Tracker) Active() bool { return len(t.faces)+len(t.plates) > 0 }

// Where returns where each track in progress was last seen, as fractions of its picture (the
// motion gate searches there even when the person stands still).
func (t *Tracker) Where() []Frac {
	var out []Frac
	add := func(b recognizers.Box, at image.Point) {
		if at.X > 0 && at.Y > 0 {
			w, h := float32(at.X), float32(at.Y)
			out = append(out, Frac{b.X / w, b.Y / h, (b.X + b.W) / w, (b.Y + b.H) / h})
		}
	}
	for _, f := range t.faces {
		add(f.lastBox, f.lastAt)
	}
	for _, p := range t.plates {
		add(p.lastBox, p.lastAt)
	}
	return out
}

// Frac is a box in fractions of its picture: x0, y0, x1, y1.
type Frac [4]float32

// Settled is a face track whose passage is already published, or that rests (a stranger,
// TrackerOptions.RestAfter): describing it again would change no event, so a worker that finds
// a face where it was last seen skips the main-stream shot and the embedding (settledOnly).
// Described is when it was last described: a settled face is described again at least every
// Reverify, so that someone who steps into the place of an identified person (a tailgater at a
// door) becomes a track of their own within that time.
type Settled struct {
	Box       Frac
	Vel       [2]float32    // how fast it moved, in fractions of the picture a second
	Seen      time.Duration // when it was last seen
	Described time.Duration
	// Grow, for a resting track, is the face height (a fraction of the picture) from which a
	// face found there is described anyway: a better shot. 0: none (a published passage).
	Grow float32
}

// At is where the settled face should be at pts (its last box moved on at its speed), as a box
// in fractions of the picture.
func (s Settled) At(pts time.Duration) recognizers.Box {
	b := recognizers.Box{X: s.Box[0], Y: s.Box[1], W: s.Box[2] - s.Box[0], H: s.Box[3] - s.Box[1]}
	return ahead(b, s.Vel, pts-s.Seen)
}

// ahead is box b moved on at vel (its units a second) for dt.
func ahead(b recognizers.Box, vel [2]float32, dt time.Duration) recognizers.Box {
	s := float32(dt.Seconds())
	b.X += vel[0] * s
	b.Y += vel[1] * s
	return b
}

// Reverify is how long a settled track goes without its face described.
const Reverify = time.Second

// Settled returns the face tracks whose passage is published.
func (t *Tracker) Settled() []Settled {
	var out []Settled
	for _, f := range t.faces {
		if t.settled(f) && f.lastAt.X > 0 && f.lastAt.Y > 0 {
			w, h := float32(f.lastAt.X), float32(f.lastAt.Y)
			b := f.lastBox
			st := Settled{Box: Frac{b.X / w, b.Y / h, (b.X + b.W) / w, (b.Y + b.H) / h},
				Vel: [2]float32{f.vel[0] / w, f.vel[1] / h}, Seen: f.last, Described: f.described}
			if !f.emitted {
				st.Grow = f.tallest * RestGrowth
			}
			out = append(out, st)
		}
	}
	return out
}

// Decided reports whether the camera has face tracks and each has had its answer: its passage is
// published, or it rests (TrackerOptions.RestAfter). A door camera's main stream is not decoded
// ahead then (shots.decided).
func (t *Tracker) Decided() bool {
	for _, tr := range t.faces {
		if !t.settled(tr) {
			return false
		}
	}
	return len(t.faces) > 0
}

// settled reports whether tr's faces are left undescribed between verifications (Settled): its
// passage is published, or it rests.
func (t *Tracker) settled(tr *faceTrack) bool { return tr.emitted || t.rests(tr) }

// rests reports whether tr is a resting track (TrackerOptions.RestAfter): not published, described
// RestAfter times, never matched.
func (t *Tracker) rests(tr *faceTrack) bool {
	return !tr.emitted && t.opts.RestAfter > 0 && tr.descs >= t.opts.RestAfter && len(tr.votes) == 0
}

// Observe adds one frame's detections of one kind, then ends tracks that aged out.
func (t *Tracker) Observe(o *Observation) {
	if o.PTS > t.lastPTS {
		t.lastPTS = o.PTS
	}
	switch o.Kind {
	case KindFace:
		t.observeFaces(o)
	case KindPlate:
		t.observePlates(o)
	}
	t.Expire(t.lastPTS)
}

// Idle records a frame analysed by nothing (the motion gate held it back): time passes and every
// track misses it.
func (t *Tracker) Idle(pts time.Duration) {
	if pts > t.lastPTS {
		t.lastPTS = pts
	}
	for _, tr := range t.faces {
		tr.misses++
	}
	for _, tr := range t.plates {
		tr.misses++
	}
	t.Expire(t.lastPTS)
}

func (t *Tracker) observeFaces(o *Observation) {
	used := map[*faceTrack]bool{}
	defer func() {
		for _, tr := range t.faces {
			if !used[tr] {
				tr.misses++
			}
		}
	}()
	for i := range o.Faces {
		d := &o.Faces[i]
		if len(d.Embedding) == 0 {
			// A face not described (its passage was published, or its track rests): it keeps
			// its track going, by where it is, and changes nothing else.
			if tr := t.trackAt(d.Box, o.PTS, used, t.settled); tr != nil {
				used[tr] = true
				tr.misses = 0
				tr.moved(d.Box, o.PTS)
				tr.last, tr.lastBox, tr.lastAt = o.PTS, d.Box, image.Pt(o.Width, o.Height)
				tr.hits++
			}
			continue
		}
		var best *faceTrack
		bestD := float32(math.MaxFloat32)
		for _, tr := range t.faces {
			if used[tr] {
				continue
			}
			dist := recognizers.Distance(tr.lastEmb, d.Embedding)
			near := centreDistance(tr.lastBox, d.Box) < float32(o.Width)/2
			if dist < t.opts.SameFace && near && sameSize(tr.lastBox, d.Box) && dist < bestD {
				best, bestD = tr, dist
			}
		}
		if best == nil {
			// A scaled-up sub-stream picture describes a face less well: its embedding can
			// fall outside SameFace of the track's. Where the face is continues the track
			// when this embedding or the track's is coarse.
			best = t.trackAt(d.Box, o.PTS, used, func(tr *faceTrack) bool { return o.Coarse || tr.coarse })
		}
		if best == nil {
			t.nextID++
			best = &faceTrack{id: t.nextID, first: o.Time, votes: map[string]int{}, matches: map[string]*event.Match{}}
			t.faces = append(t.faces, best)
		}
		used[best] = true
		best.misses = 0
		if best.hits > 0 {
			best.moved(d.Box, o.PTS)
		}
		best.last, best.lastBox, best.lastAt = o.PTS, d.Box, image.Pt(o.Width, o.Height)
		if !o.Coarse || best.lastEmb == nil {
			// A coarse embedding does not replace a fine one: the next fine frame compares to it.
			best.lastEmb, best.coarse = d.Embedding, o.Coarse
		}
		best.described = o.PTS
		best.descs++
		if o.Height > 0 {
			best.tallest = max(best.tallest, d.Box.H/float32(o.Height))
		}
		best.hits++
		sh := shot{pts: o.PTS, time: o.Time, arrival: o.Arrival, box: d.Box, quality: d.Quality.Score, crop: d.Crop}
		if best.hits == 1 || sh.quality > best.best.quality {
			best.best, best.bestRes = sh, d.FaceResult
		}
		var m *event.Match
		if t.gallery != nil {
			m = t.gallery.MatchFace(d.Embedding)
			if m != nil && o.Coarse && m.Distance >= t.gallery.Space().VeryLikely {
				m = nil
			}
		}
		if m != nil {
			best.votes[m.PersonID]++
			if prev, ok := best.matches[m.PersonID]; !ok || m.Distance < prev.Distance {
				best.matches[m.PersonID] = m
			}
			// Publish early on a confident identity, with this detection's shot: a door must
			// not wait for the passage to end.
			if !best.emitted && best.votes[m.PersonID] >= t.opts.EarlyMatches {
				t.emitFace(best, sh, d.FaceResult, m)
			}
		}
	}
}

// moved updates the track's speed from its last box to b, seen at pts.
func (tr *faceTrack) moved(b recognizers.Box, pts time.Duration) {
	dt := float32((pts - tr.last).Seconds())
	if dt <= 0 || dt > 2 {
		tr.vel = [2]float32{}
		return
	}
	tr.vel = [2]float32{(b.X + b.W/2 - tr.lastBox.X - tr.lastBox.W/2) / dt, (b.Y + b.H/2 - tr.lastBox.Y - tr.lastBox.H/2) / dt}
}

// trackAt returns the track for which ok holds, not yet used in this frame, whose box where it
// should be at pts overlaps b the most (at least settledOverlap of their union), or nil.
func (t *Tracker) trackAt(b recognizers.Box, pts time.Duration, used map[*faceTrack]bool, ok func(*faceTrack) bool) *faceTrack {
	var best *faceTrack
	bestO := float32(settledOverlap)
	for _, tr := range t.faces {
		if ok(tr) && !used[tr] {
			if o := ahead(tr.lastBox, tr.vel, pts-tr.last).Overlap(b); o >= bestO {
				best, bestO = tr, o
			}
		}
	}
	return best
}

// settledOverlap is how much a face found again must overlap where its settled track should be
// (intersection over union): the same face a sampling period later, not a neighbour's.
const settledOverlap = 0.4

// sameSize says two face boxes can be one face a moment apart: within a factor of 1.7 in height.
// People walking together are a few frames apart on the same path; a track must not hop from a
// distant face to a near one when the first has left.
func sameSize(a, b recognizers.Box) bool {
	return a.H > 0 && b.H > 0 && b.H < 1.7*a.H && a.H < 1.7*b.H
}

func centreDistance(a, b recognizers.Box) float32 {
	dx := (a.X + a.W/2) - (b.X + b.W/2)
	dy := (a.Y + a.H/2) - (b.Y + b.H/2)
	return float32(math.Hypot(float64(dx), float64(dy)))
}

func (t *Tracker) emitFace(tr *faceTrack, sh shot, res dnn.FaceResult, m *event.Match) {
	tr.emitted = true
	e := &event.Event{
		ID: event.NewID(sh.time), Camera: t.camera, Kind: KindFace, Track: tr.id, Time: sh.time, First: tr.first,
		Arrival: sh.arrival, Frames: tr.hits, Box: sh.box, Quality: sh.quality, Liveness: res.Liveness,
		Match: m, Snapshot: sh.crop.JPEG(),
	}
	if m != nil {
		mc := *m
		mc.Votes = tr.votes[m.PersonID]
		e.Match = &mc
	}
	e.Embedding = event.PackVector(res.Embedding)
	if len(res.Embedding) > 0 {
		e.Model = t.space.Name
	}
	t.emit(e)
}

// Expire ends tracks last seen more than Gap before now (stream time) and publishes those not yet
// published.
func (t *Tracker) Expire(now time.Duration) {
	keep := t.faces[:0]
	for _, tr := range t.faces {
		if now-tr.last <= t.opts.Gap || tr.misses < t.opts.MinMisses {
			keep = append(keep, tr)
			continue
		}
		if !tr.emitted {
			t.emitFace(tr, tr.best, tr.bestRes, tr.majority())
		}
	}
	t.faces = keep
	keepP := t.plates[:0]
	for _, tr := range t.plates {
		if now-tr.last <= t.opts.Gap || tr.misses < t.opts.MinMisses {
			keepP = append(keepP, tr)
			continue
		}
		if !tr.emitted {
			if text, v := tr.winner(); v != nil {
				t.emitPlate(tr, text, v)
			}
		}
	}
	t.plates = keepP
}

// Flush ends every track (camera removed, shutdown, camera silent).
func (t *Tracker) Flush() {
	for _, tr := range t.faces {
		tr.misses = t.opts.MinMisses
	}
	for _, tr := range t.plates {
		tr.misses = t.opts.MinMisses
	}
	t.Expire(t.lastPTS + t.opts.Gap + time.Hour)
}

// majority is the person most detections of the track matched, if any.
func (tr *faceTrack) majority() *event.Match {
	var best string
	for id, n := range tr.votes {
		if best == "" || n > tr.votes[best] || n == tr.votes[best] && tr.matches[id].Distance < tr.matches[best].Distance {
			best = id
		}
	}
	if best == "" {
		return nil
	}
	return tr.matches[best]
}
