package pipeline

import (
	"image"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

type plateTrack struct {
	id      uint64
	first   time.Time
	last    time.Duration
	lastBox recognizers.Box
	lastAt  image.Point
	hits    int
	misses  int
	reads   map[string]*plateVote
	emitted bool
}

type plateVote struct {
	votes int
	conf  float32 // summed mean character confidence
	best  PlateDet
	shot  shot
}

func (t *Tracker) observePlates(o *Observation) {
	used := map[*plateTrack]bool{}
	defer func() {
		for _, tr := range t.plates {
			if !used[tr] {
				tr.misses++
			}
		}
	}()
	for i := range o.Plates {
		d := &o.Plates[i]
		if d.Text == "" {
			continue
		}
		var best *plateTrack
		for _, tr := range t.plates {
			if used[tr] {
				continue
			}
			// Cars cross a frame in a few seconds: at 1 fps they jump hundreds of pixels. A
			// reading close to one of the track's, or a plate not too far away, continues it.
			if tr.similarText(d.Text) || centreDistance(tr.lastBox, d.Box) < float32(o.Width)/2 {
				best = tr
				break
			}
		}
		if best == nil {
			t.nextID++
			best = &plateTrack{id: t.nextID, first: o.Time, reads: map[string]*plateVote{}}
			t.plates = append(t.plates, best)
		}
		used[best] = true
		best.misses = 0
		best.last, best.lastBox, best.lastAt = o.PTS, d.Box, image.Pt(o.Width, o.Height)
		best.hits++
		v := best.reads[d.Text]
		if v == nil {
			v = &plateVote{}
			best.reads[d.Text] = v
		}
		v.votes++
		conf := meanConf(d.Chars)
		v.conf += conf
		if v.votes == 1 || conf > meanConf(v.best.Chars) {
			v.best = *d
			v.shot = shot{pts: o.PTS, time: o.Time, arrival: o.Arrival, box: d.Box, quality: conf, crop: d.Crop}
		}
		if !best.emitted && d.Valid && v.votes >= t.opts.EarlyPlateVotes {
			t.emitPlate(best, d.Text, v)
		}
	}
}

func meanConf(cs []event.CharConf) float32 {
	if len(cs) == 0 {
		return 0
	}
	var s float32
	for _, c := range cs {
		s += c.Conf
	}
	return s / float32(len(cs))
}

func (t *Tracker) emitPlate(tr *plateTrack, text string, v *plateVote) {
	tr.emitted = true
	e := &event.Event{
		ID: event.NewID(v.shot.time), Camera: t.camera, Kind: KindPlate, Track: tr.id, Time: v.shot.time, First: tr.first,
		Arrival: v.shot.arrival, Frames: tr.hits, Box: v.shot.box, Quality: v.shot.quality,
		Plate:    &event.PlateRead{Text: text, Color: v.best.Color, Chars: v.best.Chars, Valid: v.best.Valid, Votes: v.votes},
		Snapshot: v.shot.crop.JPEG(),
	}
	if t.gallery != nil {
		e.Match = t.gallery.MatchPlate(text)
	}
	t.emit(e)
}

// winner is the reading to publish: valid readings first, then votes, then confidence; and
// when the readings voted position by position (plate.Vote) spell another well-formed plate,
// that one: a character misread in one frame is outvoted by the others even when no two frames
// read the whole plate alike.
func (tr *plateTrack) winner() (string, *plateVote) {
	var text string
	var best *plateVote
	var reads [][]plate.Char
	for t, v := range tr.reads {
		better := best == nil ||
			v.best.Valid && !best.best.Valid ||
			v.best.Valid == best.best.Valid && (v.votes > best.votes || v.votes == best.votes && v.conf > best.conf)
		if better {
			text, best = t, v
		}
		r := make([]plate.Char, len(v.best.Chars))
		for i, c := range v.best.Chars {
			r[i] = plate.Char{Char: c.Char, Conf: c.Conf}
		}
		for range v.votes {
			reads = append(reads, r)
		}
	}
	voted, chars, agree := plate.Vote(reads)
	if best == nil || voted == text || !plate.Valid(voted, "") {
		return text, best
	}
	v := *best
	v.best.Text, v.best.Valid, v.votes = voted, true, agree
	v.best.Chars = make([]event.CharConf, len(chars))
	for i, c := range chars {
		v.best.Chars[i] = event.CharConf{Char: c.Char, Conf: c.Conf}
	}
	return voted, &v
}

// similarText reports whether text is one of the track's readings or within two edits of one.
func (tr *plateTrack) similarText(text string) bool {
	for t := range tr.reads {
		if editDistance(t, text) <= 2 {
			return true
		}
	}
	return false
}

// editDistance is the Levenshtein distance between two strings, by characters.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
