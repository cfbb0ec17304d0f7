package footage

import (
	"context"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/vigil-oss/vigil/streams"
)

// keyFrameGap is how far past a segment's end, beyond the length of the segment after it, a time
// may be and still take the segment's last key frame. A segment ends on its last frame and the
// next starts on a key frame a frame later, but the next is indexed only once it is whole: a
// still of "now" (the mask editor's) falls in a segment still being recorded, up to a segment's
// length and the time to store it past the last one indexed.
const keyFrameGap = 2 * time.Second

// KeyFrame returns the recording's key frame at or before at, as a unit a decoder takes (the
// parameter sets first), and the time it was taken: a still of the footage (the review
// timeline's previews) read from the recording as it is. ErrNoFootage when nothing was recorded
// at that time.
func KeyFrame(ctx context.Context, idx Index, blobs Blobs, camera string, at time.Time) (*streams.Unit, time.Time, error) {
	segs, err := idx.Segments(ctx, camera, at.Add(-time.Minute), at.Add(time.Millisecond))
	if err != nil {
		return nil, time.Time{}, err
	}
	var sg *Segment
	for i := range segs {
		if !segs[i].Start.After(at) {
			sg = &segs[i]
		}
	}
	if sg == nil || at.After(sg.End.Add(sg.End.Sub(sg.Start)+keyFrameGap)) {
		return nil, time.Time{}, ErrNoFootage
	}
	init, samples, _, err := readSegment(ctx, blobs, *sg)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("footage: segment %w", err)
	}
	if len(init.Tracks) == 0 {
		return nil, time.Time{}, fmt.Errorf("footage: segment %s has no track", sg.Key)
	}
	var key *fmp4.Sample
	var keyAt time.Time
	t := sg.Start
	for _, s := range samples {
		if t.After(at) {
			break
		}
		if !s.IsNonSyncSample {
			key, keyAt = s, t
		}
		t = t.Add(time.Duration(s.Duration) * time.Second / timeScale)
	}
	if key == nil {
		return nil, time.Time{}, ErrNoFootage
	}
	var avcc h264.AVCC // H.265 samples are length-prefixed the same way
	if err := avcc.Unmarshal(key.Payload); err != nil {
		return nil, time.Time{}, fmt.Errorf("footage: segment %s: key frame: %w", sg.Key, err)
	}
	u := &streams.Unit{Key: true, PTS: keyAt.Sub(sg.Start)}
	switch c := init.Tracks[0].Codec.(type) {
	case *mp4.CodecH264:
		u.Codec, u.NALUs = streams.H264, append([][]byte{c.SPS, c.PPS}, avcc...)
	case *mp4.CodecH265:
		u.Codec, u.NALUs = streams.H265, append([][]byte{c.VPS, c.SPS, c.PPS}, avcc...)
	default:
		return nil, time.Time{}, fmt.Errorf("footage: segment %s: codec %T has no stills", sg.Key, c)
	}
	return u, keyAt, nil
}

// KeyFrame is KeyFrame on the clipper's index and blobs.
func (c Clipper) KeyFrame(ctx context.Context, camera string, at time.Time) (*streams.Unit, time.Time, error) {
	return KeyFrame(ctx, c.Index, c.Blobs, camera, at)
}
