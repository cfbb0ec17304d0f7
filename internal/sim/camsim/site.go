package camsim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// The site's load model (DESIGN): how many passages a camera of each scene sees in a day, and
// how they spread over the day.
var (
	// DailyPassages per camera: 90,000 face captures a day over 625 street cameras; ~39,000
	// residents entering through 600 doors about twice a day; 2,000 plates over 6 gate cameras.
	DailyPassages = map[string]float64{PlaceStreet: 144, PlaceDoor: 130, PlaceGate: 330}
	// hourWeights shape the day: empty at night, a morning and an evening peak hour ten times
	// the day's mean hour (the two carry most of the day), a quiet day between.
	hourWeights = [24]float64{
		0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.15, 0.4, 10, 0.4, 0.25, 0.25,
		0.25, 0.25, 0.25, 0.25, 0.25, 0.4, 10, 0.4, 0.2, 0.1, 0.04, 0.04,
	}
)

// PeakHour is the hour of the day with the most passages.
func PeakHour() int {
	best := 0
	for h, w := range hourWeights {
		if w > hourWeights[best] {
			best = h
		}
	}
	return best
}

// HourlyRate is the passages per hour a camera of scene sees at hour h (0–23) of the day.
func HourlyRate(scene string, h int) float64 {
	var sum float64
	for _, w := range hourWeights {
		sum += w
	}
	return DailyPassages[scene] * hourWeights[((h%24)+24)%24] / sum
}

// SiteScenes gives n cameras the reference site's mix (625 street, 600 door, 6 gate cameras):
// gate cameras first (at least one from three cameras on), then street and door cameras
// alternating in proportion.
func SiteScenes(n int) []string {
	gates := int(math.Round(float64(n) * 6 / 1231))
	if gates == 0 && n >= 3 {
		gates = 1
	}
	out := make([]string, 0, n)
	for i := 0; i < gates; i++ {
		out = append(out, PlaceGate)
	}
	var street, door int
	for len(out) < n {
		// The scene furthest behind its share of the face cameras goes next.
		if float64(street)*600 <= float64(door)*625 {
			out, street = append(out, PlaceStreet), street+1
		} else {
			out, door = append(out, PlaceDoor), door+1
		}
	}
	return out
}

// SiteOptions set how a site's clips are made.
type SiteOptions struct {
	Params   Params // picture, GOPs, sub-stream; Seconds is each clip's length (default 4 s)
	Variants int    // looks per scene (cameras of a scene take them in turn); default 2
	Passages int    // passage clips per variant; default 12
	Seed     uint64
	Cache    string
}

// SceneClips are the clips a camera of one scene and look plays: idle ones (background motion
// only) and passages (one person or car, or a group of two or three people).
type SceneClips struct {
	Scene    string
	Idle     []*Clip
	Passages []*Clip
	Groups   []*Clip
}

// BuildSite renders (or loads from the cache) every scene's clips for the given scenes.
// progress, when set, is told of each clip built.
func BuildSite(ctx context.Context, lib *Library, scenes []string, o SiteOptions, progress func(scene string, done, total int)) (map[string][]*SceneClips, error) {
	if o.Params.Seconds == 0 {
		o.Params.Seconds = 4
	}
	if o.Variants <= 0 {
		o.Variants = 2
	}
	if o.Passages <= 0 {
		o.Passages = 12
	}
	out := map[string][]*SceneClips{}
	for _, scene := range scenes {
		if _, ok := out[scene]; ok {
			continue
		}
		if _, ok := DailyPassages[scene]; !ok {
			return nil, fmt.Errorf("camsim: scene %q is not street, door or gate", scene)
		}
		for v := 0; v < o.Variants; v++ {
			sc, err := buildScene(ctx, lib, scene, v, o, progress)
			if err != nil {
				return nil, err
			}
			out[scene] = append(out[scene], sc)
		}
	}
	return out, nil
}

func buildScene(ctx context.Context, lib *Library, scene string, v int, o SiteOptions, progress func(string, int, int)) (*SceneClips, error) {
	seed := o.Seed*1000 + uint64(v)*31 + uint64(len(scene)) // one background per scene and look
	rng := rand.New(rand.NewPCG(seed, 11))
	look := Look{Place: scene, Tree: scene == PlaceStreet && v%2 == 0}
	p := o.Params
	seconds := float64(p.frames()) / float64(p.FPS)
	px := float64(p.Height) / 720 // the load model's sizes are at 720p
	type job struct {
		look Look
		evs  []Event
		dst  *[]*Clip
	}
	sc := &SceneClips{Scene: scene}
	var jobs []job
	// Idle clips: calm, the lights switching, rain, and on a street a car without a readable plate.
	for _, l := range []Look{look, {Place: scene, Tree: look.Tree, Lights: true}, {Place: scene, Tree: look.Tree, Rain: true}} {
		jobs = append(jobs, job{look: l, dst: &sc.Idle})
	}
	if scene == PlaceStreet {
		jobs = append(jobs, job{look: look, evs: []Event{lib.passage("car", rng, seconds, px)}, dst: &sc.Idle})
	}
	for i := 0; i < o.Passages; i++ {
		jobs = append(jobs, job{look: look, evs: []Event{lib.passage(scene, rng, seconds, px)}, dst: &sc.Passages})
	}
	if scene == PlaceStreet {
		for i := 0; i < max(2, o.Passages/4); i++ {
			jobs = append(jobs, job{look: look, evs: lib.group(rng, 2+i%2, seconds, px), dst: &sc.Groups})
		}
	}
	for i, j := range jobs {
		pp := p
		l := j.look
		pp.Look = &l
		for k := range j.evs {
			if err := lib.Resolve(&j.evs[k]); err != nil {
				return nil, err
			}
		}
		c, err := BuildClip(ctx, lib, pp, j.evs, seed, o.Cache)
		if err != nil {
			return nil, fmt.Errorf("camsim: %s clip %d: %w", scene, i, err)
		}
		*j.dst = append(*j.dst, c)
		if progress != nil {
			progress(scene, i+1, len(jobs))
		}
	}
	return sc, nil
}

// passage scripts one passage of a scene within a clip of the given length: a passer-by on a
// street (40–120 px faces at 720p, scaled by px to the picture), a resident up close at a door
// (150–400 px), a car at the gate (plates 80–200 px wide), or a car without a plate.
func (l *Library) passage(scene string, rng *rand.Rand, seconds, px float64) Event {
	e := l.passage720(scene, rng, seconds)
	e.Size = max(8, int(float64(e.Size)*px))
	return e
}

func (l *Library) passage720(scene string, rng *rand.Rand, seconds float64) Event {
	dur := math.Min(seconds-0.3, 3+rng.Float64())
	e := Event{Start: 0.1, Duration: dur, Reverse: rng.IntN(2) == 1}
	switch scene {
	case PlaceGate:
		pl := l.Plates[rng.IntN(len(l.Plates))]
		e.Kind, e.Plate, e.Image, e.Size, e.Y = "plate", pl.Text, pl.Image, 80+rng.IntN(121), 0.62+0.1*rng.Float64()
	case "car":
		e.Kind, e.Size, e.Y = "car", 50+rng.IntN(40), 0.72
	default:
		var ids []string
		for _, id := range l.Identities() {
			if len(l.Walking[id]) > 0 {
				ids = append(ids, id)
			}
		}
		id := ids[rng.IntN(len(ids))]
		ph := l.Walking[id]
		e.Kind, e.Identity, e.Photo = "face", id, ph[rng.IntN(len(ph))]
		if scene == PlaceDoor {
			// Up close: the face's own box runs from about 0.9 of its size above its centre
			// (hair, forehead) to half below (chin): keep it inside the picture.
			e.Size = 150 + rng.IntN(251)
			e.Y = (0.95*float64(e.Size)+20)/720 + 0.04*rng.Float64()
		} else {
			e.Size, e.Y = 40+rng.IntN(81), 0.3+0.2*rng.Float64()
		}
	}
	return e
}

// group scripts n people passing a street together, one after another 0.7 s apart (further than
// a body's width at the walking speed), so that nobody's body hides another's face: the ground
// truth says a face is in view when it is inside the picture, not whether it is covered.
func (l *Library) group(rng *rand.Rand, n int, seconds, px float64) []Event {
	var evs []Event
	used := map[string]bool{}
	reverse := rng.IntN(2) == 1
	// One pace for the group: whoever walks behind never catches up with the one in front.
	dur := math.Max(1.5, math.Min(3.5, seconds-0.4-0.7*float64(n-1)))
	for len(evs) < n {
		e := l.passage(PlaceStreet, rng, seconds, px)
		if used[e.Identity] {
			continue
		}
		used[e.Identity] = true
		k := float64(len(evs))
		e.Reverse = reverse
		e.Start, e.Duration = 0.1+0.7*k, dur
		e.Y = 0.28 + 0.12*k
		evs = append(evs, e)
	}
	return evs
}

// Activity is the site's time of day for --activity site: the day starts at Hour (0–23) when
// the fleet starts and runs at real speed; Peak holds the peak hour all day. Boost, when over 1,
// multiplies every rate (tests and stress runs).
type Activity struct {
	Hour  float64
	Peak  bool
	Boost float64
}

// hourAt is the site's hour at t, the fleet having started at start.
func (a Activity) hourAt(start, t time.Time) int {
	if a.Peak {
		return PeakHour()
	}
	return int(a.Hour+t.Sub(start).Hours()) % 24
}

// sitePlan picks what a site camera plays next, one clip at a time: a passage with the
// probability that one starts in the clip's time at the hour's rate (a group when two would),
// else an idle clip; rain comes and goes over minutes. Owned by the camera's sender.
type sitePlan struct {
	scene  string
	clips  *packetScene
	rng    *rand.Rand
	act    Activity
	start  time.Time
	rainy  bool
	played map[string]int // idle, passage, group: for the fleet's summary
}

// packetScene is a SceneClips packetized.
type packetScene struct {
	idle, passages, groups []*packetClip
}

func (s *sitePlan) next(at time.Time) *packetClip {
	seg := float64(len(s.clips.idle[0].frames)) / float64(s.clips.idle[0].clip.Params.FPS)
	lambda := HourlyRate(s.scene, s.act.hourAt(s.start, at)) / 3600 * seg * max(1, s.act.Boost)
	// Poisson: P(0) = e^-λ, P(1) = λe^-λ.
	u := s.rng.Float64()
	p0 := math.Exp(-lambda)
	switch {
	case u >= p0+lambda*p0 && len(s.clips.groups) > 0:
		s.played["group"]++
		return s.clips.groups[s.rng.IntN(len(s.clips.groups))]
	case u >= p0:
		s.played["passage"]++
		return s.clips.passages[s.rng.IntN(len(s.clips.passages))]
	}
	s.played["idle"]++
	if s.rng.Float64() < 0.01 {
		s.rainy = !s.rainy
	}
	idle := s.clips.idle
	switch r := s.rng.Float64(); {
	case s.rainy:
		return idle[2]
	case r < 0.08:
		return idle[1] // lights
	case r < 0.14 && len(idle) > 3:
		return idle[3] // a car without a plate
	}
	return idle[0]
}
