package footage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/streams"
)

// Fleet is a node's recorders, one per camera. In events mode it marks each event on its
// camera's recorder, so that the footage around it is kept.
type Fleet struct {
	blobs Blobs
	index Index
	opts  Options
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	recs   map[string]*Recorder
	unsub  func()
}

// NewFleet returns a fleet whose recorders share blobs, index and opts.
func NewFleet(blobs Blobs, index Index, opts Options, log *slog.Logger) *Fleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &Fleet{blobs: blobs, index: index, opts: opts, log: log, ctx: ctx, cancel: cancel, recs: map[string]*Recorder{}}
}

// Record starts recording a camera's stream; lease is the epoch of the node's hold on the
// camera (Fence; 0 outside a cluster). The recorder ends, storing its segment in progress, when
// the stream closes.
//
// masks, when set, are blacked out in the recording itself: each segment is re-encoded with them
// before it is stored (privacy masks at record time; nil: recorded as the camera sends it).
func (f *Fleet) Record(camera string, s *streams.Stream, lease uint64, masks privacy.Masks) {
	rec := NewRecorder(camera, s, f.blobs, f.index, f.opts, f.log)
	rec.Lease, rec.Masks = lease, masks
	f.mu.Lock()
	f.recs[camera] = rec
	f.mu.Unlock()
	f.wg.Go(func() { rec.Run(f.ctx) })
}

// Subscriber delivers bus messages (bus.Bus).
type Subscriber interface {
	Subscribe(subject string, fn func(subject string, data []byte)) (stop func(), err error)
}

// FollowEvents marks every event's first and best-shot times on its camera's recorder (events
// mode; in continuous mode marks change nothing).
func (f *Fleet) FollowEvents(sub Subscriber) error {
	if !f.opts.EventsOnly {
		return nil
	}
	if f.unsub != nil {
		return errors.New("footage: already following events")
	}
	unsub, err := sub.Subscribe(event.SubjectPrefix+".>", func(_ string, data []byte) {
		e, err := event.Unpack(data)
		if err != nil {
			return
		}
		f.mu.Lock()
		rec := f.recs[e.Camera]
		f.mu.Unlock()
		if rec != nil {
			rec.Mark(e.First)
			rec.Mark(e.Time)
		}
	})
	f.unsub = unsub
	return err
}

// Stop waits for the recorders to end (call it after their cameras' streams have closed, so
// each stores its segment in progress), then ends any left.
func (f *Fleet) Stop(wait time.Duration) {
	if f.unsub != nil {
		f.unsub()
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		f.log.Warn("recorders still running after their streams closed; stopping them")
		f.cancel()
		<-done
	}
	f.cancel()
}

// Clipper cuts clips from one index and blob store (the API's footage).
type Clipper struct {
	Index Index
	Blobs Blobs
}

// Clip returns the MP4 and the segments it had to skip; ErrNoFootage when nothing was recorded.
func (c Clipper) Clip(ctx context.Context, camera string, from, to time.Time) ([]byte, []string, error) {
	return Clip(ctx, c.Index, c.Blobs, camera, from, to)
}

// WriteClip streams the MP4 to w (see WriteClip).
func (c Clipper) WriteClip(ctx context.Context, camera string, from, to time.Time, w io.Writer) ([]string, error) {
	return WriteClip(ctx, c.Index, c.Blobs, camera, from, to, w)
}

// ClipStart is where a clip of [from, to] starts (see ClipStart).
func (c Clipper) ClipStart(ctx context.Context, camera string, from, to time.Time) (time.Time, error) {
	return ClipStart(ctx, c.Index, c.Blobs, camera, from, to)
}

// Span is a stretch of continuous recording: segments that follow one another within spanJoin.
type Span struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Segments int       `json:"segments"`
	Bytes    int64     `json:"bytes"`
}

// spanJoin is the largest hole between two segments that still counts as one recording (a
// segment's end is its last frame, the next starts on the next key frame).
const spanJoin = 2 * time.Second

// Recorded returns the recorded spans of a camera overlapping [from, to], oldest first: the
// review timeline's footage, and its gaps between them.
func (c Clipper) Recorded(ctx context.Context, camera string, from, to time.Time) ([]Span, error) {
	segs, err := c.Index.Segments(ctx, camera, from, to)
	if err != nil {
		return nil, err
	}
	return Spans(segs), nil
}

// Spans joins segments (oldest first) into spans.
func Spans(segs []Segment) []Span {
	var out []Span
	for _, s := range segs {
		if n := len(out); n > 0 && !s.Start.After(out[n-1].End.Add(spanJoin)) {
			last := &out[n-1]
			if s.End.After(last.End) {
				last.End = s.End
			}
			last.Segments++
			last.Bytes += s.Bytes
			continue
		}
		out = append(out, Span{Start: s.Start, End: s.End, Segments: 1, Bytes: s.Bytes})
	}
	return out
}

// Usage is every camera's recording usage, when the index can tell (PGIndex).
func (c Clipper) Usage(ctx context.Context) (map[string]Usage, error) {
	u, ok := c.Index.(interface {
		Usage(ctx context.Context) (map[string]Usage, error)
	})
	if !ok {
		return nil, nil
	}
	return u.Usage(ctx)
}
