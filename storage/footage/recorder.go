package footage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/streams"
)

// Segment is one stored piece of footage.
type Segment struct {
	Camera     string
	Start, End time.Time
	Key        string
	Bytes      int64
	Codec      streams.Codec
	// Lease is the epoch of the recording node's hold on the camera (Fence); 0 outside a
	// cluster's placement.
	Lease uint64
}

// Blobs is where segments go.
type Blobs interface {
	Put(ctx context.Context, key string, data []byte, contentType string) error
	Get(ctx context.Context, key string) ([]byte, error)
}

// Index records and finds segments.
type Index interface {
	AddSegment(ctx context.Context, s Segment) error
	Segments(ctx context.Context, camera string, from, to time.Time) ([]Segment, error)
}

// Options tune a recorder.
type Options struct {
	// SegmentLength is the target segment duration; segments close at the first key frame after
	// it. Default 10 s.
	SegmentLength time.Duration
	// WorkDir holds segments being written. Default the system's temporary folder.
	WorkDir string
	// EventsOnly keeps only footage around events (Mark): closed segments wait on the work disk
	// and are stored when an event falls within PreRoll before or PostRoll after them, else
	// deleted once no event can claim them any more.
	EventsOnly        bool
	PreRoll, PostRoll time.Duration // defaults 5 s and 10 s
	// Hold is how long a segment waits for an event to arrive after it (events come out of the
	// pipeline seconds after their frames). Default 30 s.
	Hold time.Duration
}

// Recorder records one camera. Run owns all its state.
type Recorder struct {
	// Lease is the epoch of this node's hold on the camera, carried by every segment (set
	// before Run; 0 outside a cluster's placement).
	Lease uint64
	// Masks are blacked out in every segment before it is stored (set before Run): the
	// camera's privacy masks at record time. A segment that cannot be masked is not stored.
	Masks privacy.Masks

	camera string
	stream *streams.Stream
	blobs  Blobs
	index  Index
	opts   Options
	log    *slog.Logger

	pending []Segment // stored in the blob store, not yet indexed (database down)
	held    []heldSegment
	marks   chan time.Time
	times   []time.Time // event times seen, newest last, for the events-only decision
	n       int         // segments closed, for unique work file names
}

// heldSegment is a closed segment in events-only mode, waiting on the work disk for an event.
type heldSegment struct {
	path       string
	start, end time.Time
	closed     time.Time
	codec      streams.Codec
}

// NewRecorder returns a recorder for camera's stream.
func NewRecorder(camera string, s *streams.Stream, blobs Blobs, index Index, opts Options, log *slog.Logger) *Recorder {
	if opts.SegmentLength <= 0 {
		opts.SegmentLength = 10 * time.Second
	}
	if opts.WorkDir == "" {
		opts.WorkDir = os.TempDir()
	}
	if opts.PreRoll <= 0 {
		opts.PreRoll = 5 * time.Second
	}
	if opts.PostRoll <= 0 {
		opts.PostRoll = 10 * time.Second
	}
	if opts.Hold <= 0 {
		opts.Hold = 30 * time.Second
	}
	return &Recorder{camera: camera, stream: s, blobs: blobs, index: index, opts: opts, marks: make(chan time.Time, 256),
		log: log.With("component", "recorder", "camera", camera)}
}

// Mark tells an events-only recorder that an event happened at t. It never blocks; a mark that
// does not fit (256 waiting) is dropped and logged.
func (r *Recorder) Mark(t time.Time) {
	select {
	case r.marks <- t:
	default:
		r.log.Warn("recorder event mark dropped: recorder behind")
	}
}

// Run records until ctx ends or the stream closes, then stores the segment in progress.
func (r *Recorder) Run(ctx context.Context) {
	rd := r.stream.NewReader("recorder", 512)
	defer rd.Close()
	if err := os.MkdirAll(r.opts.WorkDir, 0o750); err != nil {
		r.log.Error("recorder work folder", "err", err)
		return
	}
	work := filepath.Join(r.opts.WorkDir, safe(r.camera)+".mp4.part")
	var cur *segment
	defer func() {
		if cur != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.store(sctx, cur)
			cancel()
		}
	}()
	defer r.dropHeld()
	for {
		u, err := rd.Read(ctx)
		if err != nil {
			return
		}
		r.takeMarks(ctx)
		if cur != nil && u.Key && (u.PTS < cur.lastPTS || cur.duration() >= r.opts.SegmentLength-r.opts.SegmentLength/20) {
			// Long enough, or the camera restarted (timestamps went back): the segment closes
			// and the next starts on this key frame.
			r.store(ctx, cur)
			cur = nil
		}
		if cur == nil {
			if !u.Key {
				continue // a reader starts on a key unit; after a drop it resumes on one too
			}
			if cur, err = newSegment(u, work); err != nil {
				r.log.Warn("cannot start a segment", "err", err)
				cur = nil
			}
			continue
		}
		if err := cur.add(u); err != nil {
			// A full or failing disk: this segment is lost, recording goes on with the next.
			r.log.Warn("segment abandoned", "err", err)
			cur.abandon()
			cur = nil
		}
	}
}

// store closes the segment and, in continuous mode, keeps it; in events-only mode it waits for
// an event to claim it.
func (r *Recorder) store(ctx context.Context, s *segment) {
	dur, err := s.finish()
	if err != nil {
		os.Remove(s.f.Name())
		r.log.Warn("segment dropped: cannot be written", "err", err)
		return
	}
	if !r.opts.EventsOnly {
		r.keep(ctx, s.f.Name(), s.start, s.start.Add(dur), s.codec)
		return
	}
	r.n++
	held := fmt.Sprintf("%s.held.%d", s.f.Name(), r.n)
	if err := os.Rename(s.f.Name(), held); err != nil {
		os.Remove(s.f.Name())
		return
	}
	r.held = append(r.held, heldSegment{path: held, start: s.start, end: s.start.Add(dur), closed: time.Now(), codec: s.codec})
	r.decide(ctx)
}

// takeMarks collects event marks without blocking and decides on held segments.
func (r *Recorder) takeMarks(ctx context.Context) {
	got := false
	for {
		select {
		case t := <-r.marks:
			r.times = append(r.times, t)
			got = true
			continue
		default:
		}
		break
	}
	if got || len(r.held) > 0 {
		r.decide(ctx)
	}
}

// decide stores held segments an event claims and deletes those no event can claim any more.
func (r *Recorder) decide(ctx context.Context) {
	keep := r.held[:0]
	for _, h := range r.held {
		claimed := false
		for _, t := range r.times {
			if !t.Add(-r.opts.PreRoll).After(h.end) && !t.Add(r.opts.PostRoll).Before(h.start) {
				claimed = true
				break
			}
		}
		switch {
		case claimed:
			r.keep(ctx, h.path, h.start, h.end, h.codec)
		case time.Since(h.closed) > r.opts.Hold:
			os.Remove(h.path)
		default:
			keep = append(keep, h)
		}
	}
	r.held = keep
	// Marks older than anything that can still be claimed are forgotten.
	cut := time.Now().Add(-r.opts.Hold - r.opts.PreRoll - r.opts.PostRoll)
	i := 0
	for i < len(r.times) && r.times[i].Before(cut) {
		i++
	}
	r.times = r.times[i:]
}

func (r *Recorder) dropHeld() {
	for _, h := range r.held {
		os.Remove(h.path)
	}
	r.held = nil
}

// keep puts a closed segment file in the blob store and indexes it; an index failure keeps it
// pending and retries with the next segment. The blob store spools by itself when it is down.
func (r *Recorder) keep(ctx context.Context, path string, start, end time.Time, codec streams.Codec) {
	defer os.Remove(path)
	data, err := os.ReadFile(path)
	if err != nil {
		r.log.Warn("segment dropped: cannot be read back", "err", err)
		return
	}
	if len(r.Masks) > 0 {
		if data, err = MaskSegment(ctx, data, r.Masks); err != nil {
			r.log.Error("segment not stored: its privacy masks could not be applied", "err", err)
			return
		}
	}
	seg := Segment{Camera: r.camera, Start: start, End: end, Bytes: int64(len(data)), Codec: codec, Lease: r.Lease}
	seg.Key = fmt.Sprintf("footage/%s/%s/%d.mp4", safe(r.camera), start.UTC().Format("2006/01/02"), start.UnixMilli())
	if r.Lease > 0 {
		// Two nodes never write one object: a stale holder's segment cannot replace the new one's.
		seg.Key = fmt.Sprintf("footage/%s/%s/%d-e%d.mp4", safe(r.camera), start.UTC().Format("2006/01/02"), start.UnixMilli(), r.Lease)
	}
	if err := r.blobs.Put(ctx, seg.Key, data, "video/mp4"); err != nil {
		r.log.Warn("segment not stored", "key", seg.Key, "err", err)
		return
	}
	r.pending = append(r.pending, seg)
	for len(r.pending) > 0 {
		if err := r.index.AddSegment(ctx, r.pending[0]); errors.Is(err, ErrFenced) {
			r.log.Warn("segment refused: another node holds the camera now", "key", r.pending[0].Key, "err", err)
			r.pending = r.pending[1:]
			continue
		} else if err != nil {
			if len(r.pending) > 1000 {
				r.pending = r.pending[1:] // bound memory: the oldest index row is given up, the blob stays
			}
			r.log.Warn("segment not indexed yet; will retry", "pending", len(r.pending), "err", err)
			return
		}
		r.pending = r.pending[1:]
	}
}

func safe(camera string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, camera)
}
