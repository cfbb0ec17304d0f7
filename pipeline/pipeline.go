package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/streams"
)

// Publisher puts events on the bus. It must not lose an event it returned nil for.
type Publisher interface {
	Publish(ctx context.Context, e *event.Event) error
}

// Config wires a Pipeline.
type Config struct {
	Faces, Plates *Pool // either may be nil
	Gallery       *Gallery
	Publisher     Publisher
	Metrics       *Metrics
	Log           *slog.Logger
	// CPUSlots is how many native calls (decodes, model runs) run at once, door cameras' first
	// (cpuSlots): 0 means one per core, a negative value no limit (every call on its own
	// thread, the kernel sharing the cores: the pipeline before the slots, for benches).
	CPUSlots int
	// NoShotAhead asks for a door camera's main-stream shot only once faces are found on its
	// sub-stream frame, not as the frame is queued (ahead): for benches.
	NoShotAhead bool
	// NoDecodeAhead decodes a door camera's main stream only for its shots, not ahead of them
	// while someone is at the door (shots.stepAhead): for benches.
	NoDecodeAhead bool
	// NoKeyFrameSlot decodes sub-stream key frames in the CPU slots the models use, not in a
	// slot of their own (Pipeline.keyCPU): for benches.
	NoKeyFrameSlot bool
	// NoStillSkip decodes every key frame a sub-stream camera's rate samples, though its
	// compressed stream shows the scene still since the last (stillness): for benches.
	NoStillSkip bool
	// NoStrangerRest describes every face found on a track that has matched no one, however
	// often it was described (TrackerOptions.RestAfter): for benches.
	NoStrangerRest bool
	// DoorMinFace is the smallest face a door camera needs found, as a fraction of its analysed
	// picture's height (0: every size): its frames are searched at the scale that makes such a
	// face 32 px tall, and the faces found there searched again, each in a small window of the
	// main picture, for the landmarks their embedding is aligned by (dnn.Detector.DetectSized,
	// Refine). A door unit sees whoever waits at it up close.
	DoorMinFace float64
}

// Pipeline owns the recognizer pools and one analyser per camera.
type Pipeline struct {
	faces, plates *Pool
	gallery       *Gallery
	pub           Publisher
	metrics       *Metrics
	log           *slog.Logger
	cpu           *cpuSlots // nil: unscheduled
	// keyCPU is the slot of sub-stream key frames' decodes (keyframes_only cameras), one at a
	// time beside the model calls' slots (nil: they use cpu). They are short (1.4 ms at
	// 640×360), a few a second a camera, and the motion gate waits for them: in the models'
	// slots, behind door and track work, a quiet street's key frame waited up to a second at
	// 120 cameras on two cores, and the scene went unwatched meanwhile. A door frame's model
	// call shares a core with one such decode at most.
	keyCPU        *cpuSlots
	noShotAhead   bool
	noDecodeAhead bool
	noStillSkip   bool // Config.NoStillSkip
	noRest        bool // Config.NoStrangerRest
	doorMinFace   float64

	priority atomic.Pointer[func(camera string) bool]

	mu   sync.Mutex
	cams map[string]*camEntry
	ctx  context.Context
	wg   sync.WaitGroup
}

type camEntry struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	a      *analyser
}

// Stats returns what the pipeline did with a camera's frames; false when it does not analyse it.
func (p *Pipeline) Stats(camera string) (CameraStats, bool) {
	p.mu.Lock()
	e, ok := p.cams[camera]
	p.mu.Unlock()
	if !ok {
		return CameraStats{}, false
	}
	s := &e.a.stats
	return CameraStats{Sampled: s.sampled.Load(), Gated: s.gated.Load(), Still: s.still.Load(), Offered: s.offered.Load(), Dropped: s.dropped.Load()}, true
}

// New returns a pipeline; Run starts it.
func New(cfg Config) *Pipeline {
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	p := &Pipeline{faces: cfg.Faces, plates: cfg.Plates, gallery: cfg.Gallery, pub: cfg.Publisher,
		metrics: cfg.Metrics, log: cfg.Log.With("component", "pipeline"), cams: map[string]*camEntry{}, noShotAhead: cfg.NoShotAhead, noDecodeAhead: cfg.NoDecodeAhead, noStillSkip: cfg.NoStillSkip, noRest: cfg.NoStrangerRest, doorMinFace: cfg.DoorMinFace}
	if cfg.CPUSlots >= 0 {
		p.cpu = newCPUSlots(cfg.CPUSlots)
		if !cfg.NoKeyFrameSlot {
			p.keyCPU = newCPUSlots(1)
		}
	}
	for _, pool := range []*Pool{p.faces, p.plates} {
		if pool != nil {
			pool.cpu = p.cpu
		}
	}
	return p
}

// Start starts the worker pools; they and every camera's analysis stop when ctx ends. Wait
// waits for that.
func (p *Pipeline) Start(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
	for _, pool := range []*Pool{p.faces, p.plates} {
		if pool != nil {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				pool.Run(ctx)
			}()
		}
	}
}

// Wait returns once ctx has ended, every analyser has published its passages in progress, and
// the workers have stopped.
func (p *Pipeline) Wait() {
	<-p.ctx.Done()
	p.mu.Lock()
	cams := p.cams
	p.cams = map[string]*camEntry{}
	p.mu.Unlock()
	for _, c := range cams {
		c.cancel()
		c.done.Wait()
	}
	p.wg.Wait()
}

// SetPriority names the cameras whose frames the recognizer pools take first (door cameras:
// someone is waiting at the door). It may be called at any time; fn must be cheap and safe for
// concurrent use.
func (p *Pipeline) SetPriority(fn func(camera string) bool) {
	p.priority.Store(&fn)
}

func (p *Pipeline) prioritised(camera string) bool {
	fn := p.priority.Load()
	return fn != nil && (*fn)(camera)
}

// AddCamera starts analysing a camera's stream. Call after Start.
func (p *Pipeline) AddCamera(id string, s *streams.Stream, opts Options) error {
	opts.defaults()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil {
		return fmt.Errorf("pipeline: not running")
	}
	if _, ok := p.cams[id]; ok {
		return fmt.Errorf("pipeline: camera %q already analysed", id)
	}
	ctx, cancel := context.WithCancel(p.ctx)
	a := &analyser{camera: id, stream: s, opts: opts, p: p, results: make(chan *Observation, 256),
		mask: privacy.NewPainter(opts.Masks), log: p.log.With("camera", id)}
	e := &camEntry{cancel: cancel, a: a}
	if opts.Main != nil {
		a.shots = newShots(id, opts.Main, a.mask, p.metrics, a.log)
		a.shots.cpu, a.shots.noAhead, a.shots.decided = p.cpu, p.noDecodeAhead, a.decided.Load
		e.done.Add(1)
		go func() { defer e.done.Done(); a.shots.run(ctx) }()
	}
	for _, pool := range []*Pool{p.faces, p.plates} {
		if pool != nil {
			pool.Fit(len(p.cams) + 1)
		}
	}
	e.done.Add(2)
	go func() { defer e.done.Done(); a.ingest(ctx) }()
	go func() { defer e.done.Done(); a.track(ctx) }()
	p.cams[id] = e
	return nil
}

// RemoveCamera stops a camera's analysis; its passages in progress are published.
func (p *Pipeline) RemoveCamera(id string) {
	p.mu.Lock()
	e, ok := p.cams[id]
	delete(p.cams, id)
	p.mu.Unlock()
	if ok {
		e.cancel()
		e.done.Wait()
	}
}

// publish retries until the bus takes the event or ctx ends: events are never dropped on a
// busy or restarting bus (the event store issue adds a disk spool for longer outages).
func (p *Pipeline) publish(ctx context.Context, e *event.Event) {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.pub.Publish(ctx, e)
		if err == nil {
			matched := "no"
			if e.Match != nil {
				matched = "yes"
			}
			p.metrics.events.WithLabelValues(e.Camera, e.Kind, matched).Inc()
			p.metrics.e2e.WithLabelValues(e.Kind).Observe(time.Since(e.Arrival).Seconds())
			return
		}
		if attempt == 1 || attempt%20 == 0 {
			p.log.Warn("publishing event failed; retrying", "camera", e.Camera, "event", e.ID, "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			p.log.Error("event not published before shutdown", "camera", e.Camera, "event", e.ID)
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}
