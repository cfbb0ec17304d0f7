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
// timestamps. A segment that is missing or corrupt is skipped and named in skipped; the rest of
// the range still comes. Nothing is written before the first usable segment is found, so
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
	var base uint64
	var seq uint32
	for _, sg := range segs {
		data, err := blobs.Get(ctx, sg.Key)
		if err != nil {
			if ctx.Err() != nil {
				return skipped, ctx.Err()
			}
			skipped = append(skipped, fmt.Sprintf("%s: %v", sg.Key, err))
			continue
		}
		var init fmp4.Init
		var parts fmp4.Parts
		if err := init.Unmarshal(bytes.NewReader(data)); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: corrupt: %v", sg.Key, err))
			continue
		}
		if err := parts.Unmarshal(data); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: corrupt: %v", sg.Key, err))
			continue
		}
		// A segment's fragments are one timeline from its start: flatten them, then cut once, so
		// the clip starts on a key frame even when the range starts in a fragment without one.
		var samples []*fmp4.Sample
		var trackID int
		for _, p := range parts {
			for _, tr := range p.Tracks {
				samples = append(samples, tr.Samples...)
				trackID = tr.ID
			}
		}
		kept := cut(samples, sg.Start, from, to)
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

// cut keeps the samples of a segment starting at start that fall in [from, to], widened back to
// the last key frame at or before from.
func cut(samples []*fmp4.Sample, start, from, to time.Time) []*fmp4.Sample {
	first, last := -1, len(samples)-1
	t := start
	for i, s := range samples {
		if !s.IsNonSyncSample && !t.After(from) {
			first = i
		}
		if t.After(to) {
			last = i - 1
			break
		}
		t = t.Add(time.Duration(s.Duration) * time.Second / timeScale)
	}
	if first < 0 {
		if start.After(from) {
			first = 0 // the segment starts inside the range, on its key frame
		} else {
			return nil
		}
	}
	if last < first {
		return nil
	}
	return samples[first : last+1]
}
