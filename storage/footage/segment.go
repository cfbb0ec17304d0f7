// Package footage records cameras to fragmented-MP4 segments without re-encoding (each starts on
// a key frame), stores them in the blob store with an index in PostgreSQL, and cuts clips out of
// them at key frame precision.
package footage

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/vigil-oss/vigil/streams"
)

// timeScale is the MP4 track clock: RTP's 90 kHz.
const timeScale = 90000

// partLength is how much video a segment holds in memory before it is appended to its file: a
// recorder costs about one second of bitrate in memory, not a whole segment.
const partLength = time.Second

// segment is one segment being written: an init section, then a fragment per second, appended
// to a local file. It starts on a key unit.
type segment struct {
	codec   streams.Codec
	start   time.Time     // wall clock of the first unit
	pts0    time.Duration // stream time of the first unit
	lastPTS time.Duration
	pending []*streams.Unit // not yet in a fragment; the last waits for its successor's timestamp
	f       *os.File
	seq     uint32
	dur     time.Duration // written so far
	lastDur uint32
}

func newSegment(u *streams.Unit, path string) (*segment, error) {
	if !u.Key {
		return nil, errors.New("footage: a segment must start on a key unit")
	}
	n := 2
	if u.Codec == streams.H265 {
		n = 3
	}
	if len(u.NALUs) < n {
		return nil, errors.New("footage: key unit without parameter sets")
	}
	s := &segment{codec: u.Codec, start: u.Arrival, pts0: u.PTS, lastPTS: u.PTS, lastDur: timeScale / 25}
	var codec mp4.Codec
	if u.Codec == streams.H265 {
		codec = &mp4.CodecH265{VPS: u.NALUs[0], SPS: u.NALUs[1], PPS: u.NALUs[2]}
	} else {
		codec = &mp4.CodecH264{SPS: u.NALUs[0], PPS: u.NALUs[1]}
	}
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: timeScale, Codec: codec}}}
	if err := init.Marshal(&buf); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	s.f = f
	s.pending = append(s.pending, u)
	return s, nil
}

// add appends a unit; a second's worth goes to the file as one fragment.
func (s *segment) add(u *streams.Unit) error {
	s.pending = append(s.pending, u)
	s.lastPTS = u.PTS
	if u.PTS-s.pending[0].PTS >= partLength {
		return s.flush(false)
	}
	return nil
}

// duration is the stream time covered so far.
func (s *segment) duration() time.Duration { return s.lastPTS - s.pts0 }

// flush writes the pending units as a fragment; unless final, the last one stays pending until
// its successor gives its duration.
func (s *segment) flush(final bool) error {
	n := len(s.pending)
	if !final {
		n--
	}
	if n <= 0 {
		return nil
	}
	samples := make([]*fmp4.Sample, 0, n)
	base := uint64((s.pending[0].PTS - s.pts0) * timeScale / time.Second)
	for i := 0; i < n; i++ {
		u := s.pending[i]
		if i+1 < len(s.pending) {
			if d := s.pending[i+1].PTS - u.PTS; d > 0 && d < 10*time.Second {
				s.lastDur = uint32(d * timeScale / time.Second)
			}
		}
		sm := &fmp4.Sample{Duration: s.lastDur, IsNonSyncSample: !u.Key}
		var err error
		if u.Codec == streams.H265 {
			err = sm.FillH265(0, u.NALUs)
		} else {
			err = sm.FillH264(0, u.NALUs)
		}
		if err != nil {
			return fmt.Errorf("footage: sample: %w", err)
		}
		samples = append(samples, sm)
		s.dur += time.Duration(s.lastDur) * time.Second / timeScale
	}
	s.seq++
	var buf seekablebuffer.Buffer
	part := fmp4.Part{SequenceNumber: s.seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: base, Samples: samples}}}
	if err := part.Marshal(&buf); err != nil {
		return err
	}
	if _, err := s.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("footage: writing %s: %w", s.f.Name(), err)
	}
	s.pending = append(s.pending[:0], s.pending[n:]...)
	return nil
}

// finish writes what is pending and closes the file; it returns the segment's duration.
func (s *segment) finish() (time.Duration, error) {
	err := s.flush(true)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return s.dur, err
}

// abandon closes and removes the file.
func (s *segment) abandon() {
	s.f.Close()
	os.Remove(s.f.Name())
}
