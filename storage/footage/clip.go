package footage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// ErrNoFootage means nothing was recorded in the range.
var ErrNoFootage = errors.New("footage: nothing recorded in that range")

// Clip returns one fragmented MP4 covering [from, to] (WriteClip, into memory): for case files,
// whose clips are bounded by their roll.
func Clip(ctx context.Context, idx Index, blobs Blobs, camera string, from, to time.Time) (mp4 []byte, skipped []string, err error) {
	var b bytes.Buffer
	skipped, err = WriteClip(ctx, idx, blobs, camera, from, to, &b)
	return b.Bytes(), skipped, err
}

// WriteClip writes one fragmented MP4 covering [from, to] to w, segment by segment (one
// segment in memory at a time, whatever the range): it starts at the last key frame at or before
// from and ends with the first frame at or after to. Segments are joined with continuous
// timestamps, but where the recording has a gap of joinGap or more (the camera was away) the
// clip has the same gap: a frame's time in the clip is when it was taken, less the clip's first
// frame's, so a player (Review, a case file's viewer) shows every frame at its real time. A
// segment that is missing or corrupt is skipped and named in skipped; the rest of the range
// still comes. Nothing is written before the first usable segment is found, so
// ErrNoFootage comes with an untouched w.
func WriteClip(ctx context.Context, idx Index, blobs Blobs, camera string, from, to time.Time, w io.Writer) (skipped []string, err error) {
	segs, err := idx.Segments(ctx, camera, from, to)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, ErrNoFootage
	}
	var initWritten bool
	var first []byte // the clip's init: a segment recorded with other codec parameters ends it
	var base uint64  // where the next part starts in the clip, in timeScale units
	var t0 time.Time // when the clip's first frame was taken
	var seq uint32
	for _, sg := range segs {
		init, samples, trackID, err := readSegment(ctx, blobs, sg)
		if err != nil {
			if ctx.Err() != nil {
				return skipped, ctx.Err()
			}
			skipped = append(skipped, err.Error())
			continue
		}
		kept, at := cut(samples, sg.Start, from, to)
		if len(kept) == 0 {
			continue
		}
		var out seekablebuffer.Buffer
		var ib seekablebuffer.Buffer
		if err := init.Marshal(&ib); err != nil {
			return skipped, err
		}
		if initWritten && !bytes.Equal(ib.Bytes(), first) {
			// Privacy masks at record time were turned on or off (segments re-encoded), or the
			// camera changed its stream: one MP4 cannot switch codec parameters, so it ends here.
			skipped = append(skipped, fmt.Sprintf("%s and after: recorded with other codec parameters; ask for them separately", sg.Key))
			break
		}
		if !initWritten {
			first = ib.Bytes()
			if _, err := out.Write(first); err != nil {
				return skipped, err
			}
			initWritten = true
		}
		if seq == 0 {
			t0 = at
		} else if off := at.Sub(t0); off-ticksDuration(base) >= joinGap {
			base = uint64(off.Microseconds()) * timeScale / 1e6
		}
		seq++
		np := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{{ID: trackID, BaseTime: base, Samples: kept}}}
		if err := np.Marshal(&out); err != nil {
			return skipped, err
		}
		if _, err := w.Write(out.Bytes()); err != nil {
			return skipped, err
		}
		for _, s := range kept {
			base += uint64(s.Duration)
		}
	}
	if seq == 0 {
		return skipped, ErrNoFootage
	}
	return skipped, nil
}

// joinGap is the smallest gap between two segments that a clip keeps as a gap: smaller ones are
// the segments' clock against their frames' durations, joined without a jump.
const joinGap = time.Second

// ticksDuration is a time in timeScale units as a duration (a clip of days, without overflow).
func ticksDuration(t uint64) time.Duration {
	return time.Duration(t/timeScale)*time.Second + time.Duration(t%timeScale)*time.Second/timeScale
}

// readSegment fetches a segment and flattens its fragments into one timeline from its start
// (so a clip starts on a key frame even when the range starts in a fragment without one). Its
// errors name the segment.
func readSegment(ctx context.Context, blobs Blobs, sg Segment) (init fmp4.Init, samples []*fmp4.Sample, trackID int, err error) {
	data, err := blobs.Get(ctx, sg.Key)
	if err != nil {
		return init, nil, 0, fmt.Errorf("%s: %w", sg.Key, err)
	}
	var parts fmp4.Parts
	if err := init.Unmarshal(bytes.NewReader(data)); err != nil {
		return init, nil, 0, fmt.Errorf("%s: corrupt: %w", sg.Key, err)
	}
	if err := parts.Unmarshal(data); err != nil {
		return init, nil, 0, fmt.Errorf("%s: corrupt: %w", sg.Key, err)
	}
	for _, p := range parts {
		for _, tr := range p.Tracks {
			samples = append(samples, tr.Samples...)
			trackID = tr.ID
		}
	}
	return init, samples, trackID, nil
}

// ClipStart is the time a clip of [from, to] starts at (WriteClip's first frame): the key frame
// at or before from, or where the recording starts when that is later. A player of the clip
// places it in time with this: its time 0 is not from. ErrNoFootage when nothing was recorded.
func ClipStart(ctx context.Context, idx Index, blobs Blobs, camera string, from, to time.Time) (time.Time, error) {
	segs, err := idx.Segments(ctx, camera, from, to)
	if err != nil {
		return time.Time{}, err
	}
	for _, sg := range segs {
		_, samples, _, err := readSegment(ctx, blobs, sg)
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, ctx.Err()
			}
			continue // WriteClip skips it too
		}
		if kept, at := cut(samples, sg.Start, from, to); len(kept) > 0 {
			return at, nil
		}
	}
	return time.Time{}, ErrNoFootage
}

// cut keeps the samples of a segment starting at start that fall in [from, to], widened back to
// the last key frame at or before from, and says when the first one kept was taken.
func cut(samples []*fmp4.Sample, start, from, to time.Time) ([]*fmp4.Sample, time.Time) {
	first, last := -1, len(samples)-1
	var firstAt time.Time
	t := start
	for i, s := range samples {
		if !s.IsNonSyncSample && !t.After(from) {
			first, firstAt = i, t
		}
		if t.After(to) {
			last = i - 1
			break
		}
		t = t.Add(time.Duration(s.Duration) * time.Second / timeScale)
	}
	if first < 0 {
		if start.After(from) {
			first, firstAt = 0, start // the segment starts inside the range, on its key frame
		} else {
			return nil, time.Time{}
		}
	}
	if last < first {
		return nil, time.Time{}
	}
	return samples[first : last+1], firstAt
}
