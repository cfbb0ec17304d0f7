package footage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/streams"
)

// Segment is one stored piece of footage.
type Segment struct {
	Camera     string
	Start, End time.Time
	Key        string
	Bytes      int64
	Codec      streams.Codec
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
}

// Recorder records one camera. Run owns all its state.
type Recorder struct {
	camera string
	stream *streams.Stream
	blobs  Blobs
	index  Index
	opts   Options
	log    *slog.Logger

	pending []Segment // stored in the blob store, not yet indexed (database down)
}

// NewRecorder returns a recorder for camera's stream.
func NewRecorder(camera string, s *streams.Stream, blobs Blobs, index Index, opts Options, log *slog.Logger) *Recorder {
	if opts.SegmentLength <= 0 {
		opts.SegmentLength = 10 * time.Second
	}
	if opts.WorkDir == "" {
		opts.WorkDir = os.TempDir()
	}
	return &Recorder{camera: camera, stream: s, blobs: blobs, index: index, opts: opts,
		log: log.With("component", "recorder", "camera", camera)}
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
	for {
		u, err := rd.Read(ctx)
		if err != nil {
			return
		}
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

// store closes the segment, puts it in the blob store and indexes it; an index failure keeps it
// pending and retries with the next segment. The blob store spools by itself when it is down.
func (r *Recorder) store(ctx context.Context, s *segment) {
	dur, err := s.finish()
	defer os.Remove(s.f.Name())
	if err != nil {
		r.log.Warn("segment dropped: cannot be written", "err", err)
		return
	}
	data, err := os.ReadFile(s.f.Name())
	if err != nil {
		r.log.Warn("segment dropped: cannot be read back", "err", err)
		return
	}
	seg := Segment{Camera: r.camera, Start: s.start, End: s.start.Add(dur), Bytes: int64(len(data)), Codec: s.codec}
	seg.Key = fmt.Sprintf("footage/%s/%s/%d.mp4", safe(r.camera), s.start.UTC().Format("2006/01/02"), s.start.UnixMilli())
	if err := r.blobs.Put(ctx, seg.Key, data, "video/mp4"); err != nil {
		r.log.Warn("segment not stored", "key", seg.Key, "err", err)
		return
	}
	r.pending = append(r.pending, seg)
	for len(r.pending) > 0 {
		if err := r.index.AddSegment(ctx, r.pending[0]); err != nil {
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
