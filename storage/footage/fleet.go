package footage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
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
func (f *Fleet) Record(camera string, s *streams.Stream, lease uint64) {
	rec := NewRecorder(camera, s, f.blobs, f.index, f.opts, f.log)
	rec.Lease = lease
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
