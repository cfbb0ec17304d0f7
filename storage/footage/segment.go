// Package footage records cameras to fragmented-MP4 segments without re-encoding (each starts on
// a key frame), stores them in the blob store with an index in PostgreSQL, and cuts clips out of
// them at key frame precision.
package footage

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/vigil-oss/vigil/streams"
)

// timeScale is the MP4 track clock: RTP's 90 kHz.
const timeScale = 90000

// segment accumulates one segment's access units, starting on a key unit.
type segment struct {
	codec  streams.Codec
	start  time.Time     // wall clock of the first unit
	pts0   time.Duration // stream time of the first unit
	units  []*streams.Unit
	params [][]byte // parameter sets of the first (key) unit
}

func newSegment(u *streams.Unit) (*segment, error) {
	if !u.Key {
		return nil, errors.New("footage: a segment must start on a key unit")
	}
	s := &segment{codec: u.Codec, start: u.Arrival, pts0: u.PTS}
	n := 2
	if u.Codec == streams.H265 {
		n = 3
	}
	if len(u.NALUs) < n {
		return nil, errors.New("footage: key unit without parameter sets")
	}
	s.params = u.NALUs[:n]
	s.units = append(s.units, u)
	return s, nil
}

func (s *segment) add(u *streams.Unit) { s.units = append(s.units, u) }

// duration is the stream time covered so far.
func (s *segment) duration() time.Duration {
	return s.units[len(s.units)-1].PTS - s.pts0
}

// initTrack describes the segment's video track.
func (s *segment) initTrack() *fmp4.InitTrack {
	var codec mp4.Codec
	if s.codec == streams.H265 {
		codec = &mp4.CodecH265{VPS: s.params[0], SPS: s.params[1], PPS: s.params[2]}
	} else {
		codec = &mp4.CodecH264{SPS: s.params[0], PPS: s.params[1]}
	}
	return &fmp4.InitTrack{ID: 1, TimeScale: timeScale, Codec: codec}
}

// marshal renders the segment as init + one fragment. The last unit's duration repeats the one
// before it (its successor opens the next segment).
func (s *segment) marshal(seq uint32) ([]byte, time.Duration, error) {
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{s.initTrack()}}
	if err := init.Marshal(&buf); err != nil {
		return nil, 0, err
	}
	samples := make([]*fmp4.Sample, 0, len(s.units))
	var last uint32 = timeScale / 25
	var total time.Duration
	for i, u := range s.units {
		if i+1 < len(s.units) {
			d := s.units[i+1].PTS - u.PTS
			if d > 0 && d < 10*time.Second {
				last = uint32(d * timeScale / time.Second)
			}
		}
		total += time.Duration(last) * time.Second / timeScale
		sm := &fmp4.Sample{Duration: last, IsNonSyncSample: !u.Key}
		var err error
		if u.Codec == streams.H265 {
			err = sm.FillH265(0, u.NALUs)
		} else {
			err = sm.FillH264(0, u.NALUs)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("footage: sample: %w", err)
		}
		samples = append(samples, sm)
	}
	part := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: 0, Samples: samples}}}
	if err := part.Marshal(&buf); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), total, nil
}
