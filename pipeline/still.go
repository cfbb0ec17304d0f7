package pipeline

import (
	"slices"
	"time"

	"github.com/vigil-oss/vigil/streams"
)

// stillness tells from the compressed stream, before anything is decoded, that a camera's scene
// has stayed still since the last key frame it analysed, so that the next key frame need not be
// decoded: an encoder spends almost nothing on a picture where nothing changed (its blocks are
// skipped), and a lot on one where someone walks. The measure is the coded slice bytes of the
// pictures between key frames, per picture (filler, SEI and parameter sets left out: a constant
// bit rate camera pads with filler, which says nothing of the scene). It learns each camera's
// quiet level from the intervals its motion gate found still, so a noisy sensor at night or a
// camera's own encoder settings set the bar, not a constant; and it only skips where that level
// is low in itself (a scene whose background moves, a tree or rain, costs bits in every picture
// and someone walking adds too few to tell apart: those cameras decode as before).
//
// Only for cameras that analyse key frames only (sub-streams). A key frame is decoded whatever
// the bytes say when the last one analysed showed movement, a track is in progress, the quiet
// level is not learned yet, or refresh has passed since the last decoded key frame (the gate
// follows the light and keeps learning).
type stillness struct {
	codec   streams.Codec
	bytes   int                  // coded slice bytes of the pictures between key frames since the last key frame considered
	frames  int                  // those pictures
	quiet   float64              // the camera's quiet level: per picture, a low quantile of recent
	recent  [stillRecent]float64 // the last still intervals' per-picture bytes
	learned int                  // still intervals seen
	mean    float64              // the stream's bytes a picture, everything counted (a moving average)
	units   int                  // pictures behind mean
	still   bool                 // the last key frame decoded was held by the motion gate
	decoded time.Duration        // its PTS
	seen    bool                 // a key frame was decoded
	refresh time.Duration
	before  float64 // per-picture bytes of the interval before the key frame being decoded; -1 none
}

const (
	// stillLearn is how many still intervals teach a camera's quiet level before any skip.
	stillLearn = 4
	// stillFactor and stillSlack make the bar: an interval of up to stillFactor × the quiet level
	// plus stillSlack bytes a picture is still.
	stillFactor = 2
	stillSlack  = 16
	// stillCeiling is the highest quiet level at which a camera skips, as a fraction of the
	// stream's bytes a picture (all of it: key frames, filler). A constant bit rate camera spends
	// its budget whatever the scene and pads with filler only once the picture is as good as it
	// gets: camsim's door units at 400 kbit/s (2,000 bytes a picture) settle at 100–360 bytes
	// of slices a picture (someone walking up: 500 and up), its empty streets, a textured
	// picture the encoder keeps refining, at 600–1,100, as much as a passer-by costs. A variable
	// bit rate camera's still pictures cost a few percent of its key frames'.
	stillCeiling = 1.0 / 8
	// stillRecent is how many still intervals the quiet level is taken from, and the level is
	// their lower quartile: an encoder still refining a picture after its key frame (or a
	// camera's rate control warming up) spends more on a still scene for a second or two, and
	// the bar must not rise with it.
	stillRecent = 16
)

func newStillness(codec streams.Codec, refresh time.Duration) *stillness {
	return &stillness{codec: codec, refresh: refresh, before: -1}
}

// add counts a picture: every one in the stream's mean, those between key frames in the interval.
func (s *stillness) add(u *streams.Unit) {
	size, coded := 0, 0
	for _, nal := range u.NALUs {
		size += len(nal)
		if isSlice(s.codec, nal) {
			coded += len(nal)
		}
	}
	s.units++
	s.mean += (float64(size) - s.mean) / float64(min(s.units, 250))
	if !u.Key {
		s.bytes += coded
		s.frames++
	}
}

// ceiling is the highest quiet level at which the camera skips.
func (s *stillness) ceiling() float64 { return stillCeiling * s.mean }

// skip is asked at a key frame the camera's rate would analyse: true when the pictures since the
// last key frame considered say the scene stayed still, and the key frame need not be decoded.
func (s *stillness) skip(pts time.Duration, busy bool) bool {
	s.before = -1
	if s.frames > 0 {
		s.before = float64(s.bytes) / float64(s.frames)
	}
	s.bytes, s.frames = 0, 0
	switch {
	case busy, !s.seen, !s.still, s.learned < stillLearn, s.before < 0, s.quiet > s.ceiling(),
		pts < s.decoded, pts-s.decoded >= s.refresh:
		return false
	}
	return s.before <= stillFactor*s.quiet+stillSlack
}

// gated records what the motion gate made of the key frame decoded after skip said no: when it
// was still, the interval before it teaches the quiet level.
func (s *stillness) gated(pts time.Duration, moved bool) {
	s.seen, s.decoded, s.still = true, pts, !moved
	if moved || s.before < 0 {
		return
	}
	s.recent[s.learned%stillRecent] = s.before
	s.learned++
	v := slices.Clone(s.recent[:min(s.learned, stillRecent)])
	slices.Sort(v)
	s.quiet = v[len(v)/4]
}

// isSlice says nal is a coded slice of a picture (H.264 types 1–5, H.265 VCL types 0–31).
func isSlice(codec streams.Codec, nal []byte) bool {
	if len(nal) == 0 {
		return false
	}
	switch codec {
	case streams.H265:
		return (nal[0]>>1)&0x3f <= 31
	default:
		t := nal[0] & 0x1f
		return t >= 1 && t <= 5
	}
}
