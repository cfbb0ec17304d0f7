package footage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// ErrNoFootage means nothing was recorded in the range.
var ErrNoFootage = errors.New("footage: nothing recorded in that range")

// Clip returns one fragmented MP4 covering [from, to]: it starts at the last key frame at or
// before from and ends with the first frame at or after to. Segments are joined with continuous
// timestamps. A segment that is missing or corrupt is skipped and named in skipped; the rest of
// the range still comes back.
func Clip(ctx context.Context, idx Index, blobs Blobs, camera string, from, to time.Time) (mp4 []byte, skipped []string, err error) {
	segs, err := idx.Segments(ctx, camera, from, to)
	if err != nil {
		return nil, nil, err
	}
	if len(segs) == 0 {
		return nil, nil, ErrNoFootage
	}
	var out seekablebuffer.Buffer
	var initWritten bool
	var base uint64
	var seq uint32
	for _, sg := range segs {
		data, err := blobs.Get(ctx, sg.Key)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
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
		if !initWritten {
			if err := init.Marshal(&out); err != nil {
				return nil, skipped, err
			}
			initWritten = true
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
		seq++
		np := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{{ID: trackID, BaseTime: base, Samples: kept}}}
		if err := np.Marshal(&out); err != nil {
			return nil, skipped, err
		}
		for _, s := range kept {
			base += uint64(s.Duration)
		}
	}
	if seq == 0 {
		return nil, skipped, ErrNoFootage
	}
	return out.Bytes(), skipped, nil
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
