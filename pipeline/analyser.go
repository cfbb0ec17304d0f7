package pipeline

import (
	"context"
	"errors"
	"image"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/decode"
)

// Options are a camera's analysis settings.
type Options struct {
	// FPS is how many frames per second are sampled. Default 2.
	FPS float64
	// KeyframesOnly samples key frames only, at most FPS a second (cheapest: the rest is never
	// decoded, nor are key frames that come sooner: a sub-stream with a 0.5 s GOP gives a door
	// camera 2 frames a second and a street camera 1).
	KeyframesOnly bool
	// IdleFPS, when above 0 and under FPS, is the rate while nothing moves and no track is in
	// progress: a door camera samples at 1.25 a second until someone appears, then at FPS
	// (from the next sample on, for hotFor after the last movement). 0: always FPS.
	IdleFPS float64
	// Motion is the motion gate's threshold: a block whose grey level changed by 6× this moved
	// (motionGate); 0 means the default 1.5, and a negative value disables the gate.
	Motion float64
	// WholeFrame runs the detector on the whole frame even when only regions of it moved (the
	// gate still holds still frames): the configuration before region detection, for benches.
	WholeFrame bool
	// MaxIdle is how often a still scene's reference picture is refreshed (the gate follows slow
	// light changes; a still scene runs no detector). Default 5 s.
	MaxIdle time.Duration
	// Faces and Plates select the recognizers.
	Faces, Plates bool
	Tracker       TrackerOptions
	// Main, when set, is the camera's main stream and the analysed stream is its sub-stream
	// (cameras[].detect_url): the motion gate, detection and tracking run on the sub-stream, and
	// the best shots, embeddings and plate reads come from the main stream's picture of the same
	// moment, decoded only when a worker found something to describe.
	Main *streams.Stream
	// Masks are the camera's privacy masks: blacked out in every picture before it is gated,
	// detected or described (and so in the event's snapshot).
	Masks privacy.Masks
	// Lease is the epoch of this node's hold on the camera: its events carry it, and the event
	// store refuses those of a node that lost the camera (footage.Fence).
	Lease uint64
}

func (o *Options) defaults() {
	if o.FPS == 0 {
		o.FPS = 2
	}
	if o.Motion == 0 {
		o.Motion = 1.5
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = 5 * time.Second
	}
}

// analyser samples one camera and owns its tracker.
type analyser struct {
	camera  string
	stream  *streams.Stream
	opts    Options
	p       *Pipeline
	results chan *Observation
	busy    atomic.Bool               // the tracker has passages in progress
	decided atomic.Bool               // it has face tracks, each published or resting (Tracker.Decided)
	where   atomic.Pointer[[]Frac]    // where the tracks in progress were last seen (Tracker.Where)
	settled atomic.Pointer[[]Settled] // the face tracks whose passage is published (Tracker.Settled)
	shots   *shots                    // the main stream, when the analysed stream is a sub-stream
	mask    *privacy.Painter          // the privacy masks (nil: none)
	stats   camStats
	log     *slog.Logger
}

// camStats count what became of a camera's frames, for Pipeline.Stats.
type camStats struct {
	sampled, gated, still, offered, dropped atomic.Uint64
}

// CameraStats is what the pipeline did with a camera's frames since it started analysing it.
type CameraStats struct {
	Sampled uint64 // frames decoded and sampled
	Gated   uint64 // of those, held by the motion gate (nothing moved)
	Still   uint64 // key frames not decoded at all: the compressed stream showed the scene still (stillness)
	Offered uint64 // frames offered to a recognizer pool (one per pool)
	Dropped uint64 // offered frames dropped before recognition: the node was over capacity
}

// ingest reads units, decodes, gates and offers frames to the pools.
func (a *analyser) ingest(ctx context.Context) {
	r := a.stream.NewReader("pipeline", 64)
	defer r.Close()
	var dec *decode.Decoder
	defer func() {
		if dec != nil {
			dec.Close()
		}
	}()
	gate := &motionGate{threshold: a.opts.Motion, maxIdle: a.opts.MaxIdle}
	thumbs := &greyThumbs{mask: a.mask}
	var seq uint64
	var decodeErrs int
	var lastKey, lastSample time.Duration
	rate := newRate(a.opts, &a.busy)
	var still *stillness // a key-frames-only camera's judge of still scenes, made at the first unit (its codec)
	judge := a.opts.KeyframesOnly && !a.p.noStillSkip && a.opts.Motion >= 0
	slots := a.p.cpu // where this camera's decodes wait for a core
	if a.opts.KeyframesOnly && a.p.keyCPU != nil {
		slots = a.p.keyCPU
	}
	for {
		u, err := r.Read(ctx)
		if err != nil {
			return
		}
		if a.shots != nil {
			a.shots.reached(momentOf(u)) // decoding ahead stops short of it: a shot may be asked for it
		}
		if judge {
			if still == nil {
				still = newStillness(u.Codec, a.opts.MaxIdle)
			}
			still.add(u)
		}
		if a.opts.KeyframesOnly && u.Key {
			if seq > 0 && rate.tooSoon(u.PTS, lastKey) {
				continue // sooner than the rate allows: not decoded at all
			}
			lastKey = u.PTS
			if still != nil && still.skip(u.PTS, a.busy.Load()) {
				seq++
				a.stats.still.Add(1)
				a.p.metrics.still.WithLabelValues(a.camera).Inc()
				a.deliver(&Observation{Camera: a.camera, Seq: seq, PTS: u.PTS, Time: time.Now()}) // time still passes
				continue
			}
		}
		if dec == nil {
			mode := decode.Options{Mode: decode.Sampling, FPS: a.opts.FPS}
			if a.opts.KeyframesOnly {
				mode = decode.Options{Mode: decode.KeyOnly}
			}
			if dec, err = decode.New(u.Codec, mode); err != nil {
				a.log.Error("no decoder", "codec", u.Codec, "err", err)
				return
			}
		}
		if a.opts.KeyframesOnly && !u.Key {
			continue // never sent to the codec
		}
		slots.acquire(a.lane())
		l, err := dec.DecodeLuma(u)
		slots.release()
		if err != nil {
			if a.decodeError(err, &decodeErrs) {
				continue
			}
			return
		}
		if l == nil || (!a.opts.KeyframesOnly && seq > 0 && rate.idleSkip(l.PTS, lastSample)) {
			continue
		}
		lastSample = l.PTS
		seq++
		a.stats.sampled.Add(1)
		a.p.metrics.sampled.WithLabelValues(a.camera).Inc()
		now := time.Now()
		busy, where := a.busy.Load(), a.where.Load()
		var tracks []Frac
		if busy && where != nil {
			tracks = *where
		}
		var f *decode.Frame // converted to BGR only once the gate passes it, but for a picture without an 8-bit grey plane
		thumb := thumbs.of(l)
		if thumb == nil && l.Y == nil {
			if f, err = a.convert(dec); err != nil {
				return
			}
			thumb = thumbnail(f.BGR, f.Width, f.Height)
		}
		pass, regions := gate.passThumb(thumb, l.Width, l.Height, l.PTS, busy, tracks)
		if a.opts.WholeFrame {
			regions = nil
		}
		if pass {
			rate.moved(l.PTS)
		}
		if still != nil {
			still.gated(l.PTS, pass)
		}
		if !pass {
			a.stats.gated.Add(1)
			a.p.metrics.gated.WithLabelValues(a.camera).Inc()
			a.deliver(&Observation{Camera: a.camera, Seq: seq, PTS: l.PTS, Time: now}) // time still passes
			continue
		}
		if f == nil {
			if f, err = a.convert(dec); err != nil {
				return
			}
		}
		a.offer(ctx, u, f, seq, now, busy, regions)
	}
}

// decodeError counts a codec error on one unit (the decoder recovers at the next key unit) and
// says whether to go on; any other error ends the camera's analysis.
func (a *analyser) decodeError(err error, count *int) bool {
	var de *decode.Error
	if errors.As(err, &de) {
		*count++
		if *count%100 == 1 {
			a.log.Warn("decode errors", "count", *count, "err", err)
		}
		return true
	}
	a.log.Error("decoder failed", "err", err)
	return false
}

// convert is the BGR picture of what dec decoded last, the camera's privacy masks painted black
// (never described, never sent on). It fails only when the native side does (out of memory).
func (a *analyser) convert(dec *decode.Decoder) (*decode.Frame, error) {
	f, err := dec.BGR()
	if err != nil {
		a.log.Error("decoder failed", "err", err)
		return nil, err
	}
	a.mask.BGR(f.BGR, f.Width, f.Height, f.Stride)
	return f, nil
}

// offer hands a frame that moved to the recognizer pools, with what its workers need: where to
// search, whether it is a door camera's, the passages already published, and how to get its
// main-stream shot.
func (a *analyser) offer(ctx context.Context, u *streams.Unit, f *decode.Frame, seq uint64, now time.Time, busy bool, regions []image.Rectangle) {
	job := &Job{Camera: a.camera, Seq: seq, PTS: f.PTS, Time: now, Arrival: u.Arrival, W: f.Width, H: f.Height,
		BGR: append([]byte(nil), f.BGR...), Regions: regions, Priority: a.p.prioritised(a.camera), Busy: busy,
		Done: a.deliver, dropped: &a.stats.dropped}
	if job.Priority && a.p.doorMinFace > 0 {
		job.MinFace = int(a.p.doorMinFace * float64(f.Height))
	}
	if st := a.settled.Load(); busy && st != nil && len(*st) > 0 {
		job.Settled = *st
	}
	if a.shots != nil {
		at := momentOf(u)
		lane := underway(job)
		job.Shot = func() (*Picture, error) { return a.shots.Shot(ctx, at, lane) }
		if asksAhead(job) && !a.p.noShotAhead {
			job.Shot, job.Ahead = shotAhead(job.Shot), true
		}
		job.MainSize = a.shots.MainSize
	}
	if a.opts.Faces && a.p.faces != nil {
		a.stats.offered.Add(1)
		a.p.faces.Offer(job)
	}
	if a.opts.Plates && a.p.plates != nil {
		a.stats.offered.Add(1)
		a.p.plates.Offer(job)
	}
}

// asksAhead reports whether a frame asks for its main-stream shot as it is queued (shotAhead):
// a door camera's, while a face track is in progress there and none of its passages is published
// yet. Not on a door camera with no track: its frame that moved most often shows no face at all
// (someone's back going away, a face not yet near enough, the lights; 42% of the door frames
// that asked ahead at 105 site cameras used no shot), and every shot asked for decodes the main
// stream forward from its key frame and then ahead of the next for aheadFor. A door passage is
// published on its second matching frame (TrackerOptions.EarlyMatches), by which time its track
// is in progress and the shot is asked ahead; the first frame with a face asks once it is found.
func asksAhead(j *Job) bool { return j.Priority && j.Busy && len(j.Settled) == 0 }

// shotAhead starts shot now and returns what waits for its result. A door camera's frame asks for
// its main-stream shot as it is queued, so that the shot is decoded (in a second CPU slot) while
// the frame's faces are found on the sub-stream, instead of after: someone waits at the door
// for the two in turn otherwise. Only for the frames asksAhead says; the cost is a main-stream
// decode for such a frame where no new face is found. A shot asked for ahead that missed (the
// main stream had not reached the moment by the deadline) is asked for once more when it is
// wanted.
func shotAhead(shot func() (*Picture, error)) func() (*Picture, error) {
	done := make(chan struct{})
	var pic *Picture
	var err error
	go func() {
		defer close(done)
		pic, err = shot()
	}()
	var again sync.Once
	return func() (*Picture, error) {
		<-done
		again.Do(func() { // every caller waits here for the second ask, if any
			if err != nil && !errors.Is(err, context.Canceled) {
				pic, err = shot()
			}
		})
		return pic, err
	}
}

// lane is where the camera's decodes wait for a core (cpuSlots): a door camera's first, then
// a camera's with a track in progress.
func (a *analyser) lane() int {
	switch {
	case a.p.prioritised(a.camera):
		return laneDoor
	case a.busy.Load():
		return laneBusy
	}
	return laneRest
}

// hotFor is how long a camera with an idle rate samples at its full rate after movement.
const hotFor = 2 * time.Second

// rate paces a camera's samples: FPS, or IdleFPS while its scene is idle.
type rate struct {
	step, idleStep time.Duration // between samples; 10% slack for jitter
	hotUntil       time.Duration // PTS until which the full rate holds
	busy           *atomic.Bool
}

func newRate(o Options, busy *atomic.Bool) *rate {
	r := &rate{step: time.Duration(float64(time.Second) / o.FPS * 0.9), busy: busy}
	r.idleStep = r.step
	if o.IdleFPS > 0 && o.IdleFPS < o.FPS {
		r.idleStep = time.Duration(float64(time.Second) / o.IdleFPS * 0.9)
	}
	return r
}

func (r *rate) idle(pts time.Duration) bool {
	hot := pts < r.hotUntil && pts >= r.hotUntil-hotFor // a PTS that jumped back is not hot for ever
	return r.idleStep != r.step && !hot && !r.busy.Load()
}

// tooSoon reports whether a frame at pts comes sooner after last than the current rate allows
// (a PTS that went backwards never is).
func (r *rate) tooSoon(pts, last time.Duration) bool {
	step := r.step
	if r.idle(pts) {
		step = r.idleStep
	}
	return pts-last < step && pts >= last
}

// idleSkip: a decoded frame is skipped only for the idle rate (the decoder samples at FPS).
func (r *rate) idleSkip(pts, last time.Duration) bool {
	return r.idle(pts) && pts-last < r.idleStep && pts >= last
}

func (r *rate) moved(pts time.Duration) { r.hotUntil = pts + hotFor }

// deliver hands an observation to the tracker without blocking the caller (a worker).
func (a *analyser) deliver(o *Observation) {
	select {
	case a.results <- o:
	default:
		a.stats.dropped.Add(1)
		a.p.metrics.dropped(a.camera, o.Kind, "tracker_behind")
	}
}

// track owns the tracker: observations in, events out.
func (a *analyser) track(ctx context.Context) {
	opts := a.opts.Tracker
	if a.p.noRest {
		opts.RestAfter = -1
	}
	tr := NewTracker(a.camera, a.p.gallery, opts, func(e *event.Event) {
		e.Lease = a.opts.Lease
		a.p.publish(ctx, e)
	})
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastObs := time.Now()
	for {
		select {
		case <-ctx.Done():
			// Passages in progress are published on the way out, with a little time of their own.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			tr.emit = func(e *event.Event) { a.p.publish(fctx, e) }
			tr.Flush()
			cancel()
			return
		case o := <-a.results:
			lastObs = time.Now()
			if o.Kind == "" {
				tr.Idle(o.PTS)
			} else {
				tr.Observe(o)
			}
		case <-tick.C:
			// A camera that went silent ends its passages after the gap in wall time.
			if tr.Active() && time.Since(lastObs) > tr.opts.Gap {
				tr.Flush()
			}
		}
		w, st := tr.Where(), tr.Settled()
		a.where.Store(&w)
		a.settled.Store(&st)
		a.busy.Store(tr.Active())
		a.decided.Store(tr.Decided())
	}
}
