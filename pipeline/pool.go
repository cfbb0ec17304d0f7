package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// stagedRecognizer is a Recognizer whose work on a sub-stream's frame is split at the frame's
// main-stream shot: find on the analysed picture, then, once the shot is had, describe or read
// what was found on it (finish). The pool holds neither a recognizer nor a CPU slot while the
// shot is awaited, and finish may run on another worker's recognizer: what find found travels
// in the found value. A recognizer holds its networks; before the split a worker waiting for a
// shot (decoded forward through the main stream's GOP, behind door cameras' decodes) held its
// networks and its place among the pool's workers, and at 180 site cameras door frames queued
// for a free worker up to 2 s while the cores were not spent.
type stagedRecognizer interface {
	Recognizer
	// find works on the analysed picture. A nil found means the frame is done (nothing found,
	// or all of it is settled); otherwise finish completes it.
	find(img gocv.Mat, j *Job, o *Observation) (*found, error)
	// finish describes or reads what find found, on main when ok (the main stream's picture of
	// the frame's moment, from shotMat), else on img.
	finish(img, main gocv.Mat, ok bool, j *Job, o *Observation, f *found) error
}

// found is what a stagedRecognizer's find leaves for its finish, in the analysed picture's pixels.
type found struct {
	faces  []recognizers.Face
	plates []dnn.Plate
}

// recognizeStaged runs both halves on r, awaiting the shot in between.
func recognizeStaged(r stagedRecognizer, img gocv.Mat, j *Job, o *Observation) error {
	f, err := r.find(img, j, o)
	if err != nil || f == nil {
		return err
	}
	main, ok := shotMat(img, j, o)
	if ok {
		defer main.Close()
	}
	return r.finish(img, main, ok, j, o, f)
}

// Pool is a set of recognizers of one kind behind one bounded drop-oldest queue. At most as
// many frames as it has recognizers are taken from the queue and not yet waiting for their
// main-stream shot (the queue's turns), door cameras' frames aside; those waiting for a shot
// hold nothing but their goroutine and picture, up to parkedPer per recognizer, and finish on
// whichever recognizer is free.
type Pool struct {
	kind     string
	q        *dropQueue
	recs     chan Recognizer // the free ones
	recSlots *cpuSlots       // one per recognizer: the free ones go to door cameras' frames first
	all      []Recognizer
	metrics  *Metrics
	timers   [2]stageTimer // where its frames' time goes: other cameras', door cameras'
	cpu      *cpuSlots     // the pipeline's (set by New); nil: unscheduled
	hold     bool          // Config.HoldForShot (set by New)
	log      *slog.Logger
	wg       sync.WaitGroup
}

// parkedPer is how many frames per recognizer may wait for their shots at once: a shot waits
// at most shotWait for the main stream and then decodes a GOP's worth of frames.
const parkedPer = 3

// NewPool creates n workers with newRec (each owning its models) and a queue of size jobs.
func NewPool(kind string, n, size int, newRec func() (Recognizer, error), m *Metrics, log *slog.Logger) (*Pool, error) {
	p := &Pool{kind: kind, metrics: m, timers: m.stageTimers(kind), log: log.With("component", "pipeline", "pool", kind),
		recs: make(chan Recognizer, n), recSlots: newCPUSlots(max(n, 1))}
	p.q = newDropQueue(size, func(j *Job, reason string) {
		m.dropped(j.Camera, kind, reason)
		if j.dropped != nil {
			j.dropped.Add(1)
		}
	})
	p.q.turns = n
	for i := 0; i < n; i++ {
		r, err := newRec()
		if err != nil {
			p.closeWorkers()
			return nil, fmt.Errorf("pipeline: %s worker %d: %w", kind, i, err)
		}
		p.all = append(p.all, r)
		p.recs <- r
	}
	return p, nil
}

// Fit sizes the queue for a number of cameras: at least the size the pool was made with, and
// one job per camera. The rest lane holds at most one per camera (a newer frame takes its
// place), so its frames are never older than a sampling period and a burst (rain starting over
// a dozen cameras, lights switching) waits its turn instead of being dropped: a full queue is an
// overloaded node. At the site's sub-streams (640×360) that is 0.7 MB a camera at worst.
func (p *Pool) Fit(cameras int) {
	p.q.grow(cameras)
}

// Kind is the recognizer kind of the pool.
func (p *Pool) Kind() string { return p.kind }

// Offer queues a job without blocking; when the queue is full the oldest job is dropped.
func (p *Pool) Offer(j *Job) {
	p.q.Put(j)
	p.metrics.queueLen.WithLabelValues(p.kind).Set(float64(p.q.Len()))
}

// Run starts the workers and waits for them; they stop when ctx ends.
func (p *Pool) Run(ctx context.Context) {
	n := len(p.all)
	if !p.hold && n > 0 {
		if _, ok := p.all[0].(stagedRecognizer); ok {
			n *= 1 + parkedPer
		}
	}
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.work(ctx)
		}()
	}
	p.wg.Wait()
	p.closeWorkers()
}

func (p *Pool) closeWorkers() {
	for _, w := range p.all {
		w.Close()
	}
	p.all = nil
}

func (p *Pool) work(ctx context.Context) {
	for {
		j, ok := p.q.Get(ctx)
		if !ok {
			return
		}
		p.metrics.queueLen.WithLabelValues(p.kind).Set(float64(p.q.Len()))
		t0 := time.Now()
		// The job may be shared with the other pool's worker: what is this worker's goes on o.
		o := &Observation{Camera: j.Camera, Seq: j.Seq, PTS: j.PTS, Time: j.Time, Arrival: j.Arrival, Width: j.W, Height: j.H, Kind: p.kind,
			timer: &p.timers[0]}
		if j.Priority {
			o.timer = &p.timers[1]
		}
		if !j.Arrival.IsZero() && !j.Time.IsZero() {
			o.timer.observe(stageIngest, j.Time.Sub(j.Arrival))
			o.since(stageQueue, j.Time)
		}
		turn := sync.OnceFunc(func() { p.q.done(j) })
		if err := p.process(j, o, turn); err != nil {
			// One bad frame never stops the worker or the others.
			p.metrics.errors.WithLabelValues(j.Camera, p.kind).Inc()
			p.log.Warn("recognizer error", "camera", j.Camera, "err", err)
		}
		turn()
		p.metrics.latency.WithLabelValues(p.kind).Observe(time.Since(t0).Seconds())
		j.Done(o)
	}
}

// held is a recognizer and then a CPU slot, each for work of the lane: door cameras' first. A
// frame that waits for a recognizer holds no slot (the node's decoders need them), and one
// that holds a slot never waits for a recognizer.
func (p *Pool) held(lane int) Recognizer {
	p.recSlots.acquire(lane)
	r := <-p.recs // one is free: recSlots counts them
	p.cpu.acquire(lane)
	return r
}

func (p *Pool) free(r Recognizer) {
	p.cpu.release()
	p.recs <- r
	p.recSlots.release()
}

// process recognizes j in a CPU slot of its lane with a free recognizer. A staged recognizer's
// frame that wants its main-stream shot gives both back, and its turn (dropQueue.done), while
// the shot is awaited; it finishes in a slot of the lane of work underway.
func (p *Pool) process(j *Job, o *Observation, turn func()) error {
	view, err := gocv.NewMatFromBytes(j.H, j.W, gocv.MatTypeCV8UC3, j.BGR)
	if err != nil {
		return err
	}
	img := view.Clone() // the worker's own native copy; the Go buffer stays shared read-only
	view.Close()
	defer img.Close()
	if p.kind == KindFace {
		scope := "whole"
		if j.Regions != nil {
			scope = "regions"
		}
		p.metrics.detections.WithLabelValues(j.Camera, scope).Inc()
		defer func() {
			if o.Undescribed > 0 {
				p.metrics.undescribed.WithLabelValues(j.Camera).Add(float64(o.Undescribed))
			}
		}()
	}
	shot := false // awaited
	defer func() {
		if !shot && j.Ahead && p.kind == KindFace { // a door frame's shot asked for ahead (shotAhead) that no face used
			p.metrics.shotsUnused.WithLabelValues(j.Camera).Inc()
		}
	}()
	t := time.Now()
	r := p.held(laneOf(j))
	o.since(stageCPU, t)
	sr, staged := r.(stagedRecognizer)
	if !staged {
		defer p.free(r)
		return r.Recognize(img, o)
	}
	f, err := sr.find(img, j, o)
	if err != nil || f == nil {
		p.free(r)
		return err
	}
	if shot = j.Shot != nil; shot && p.hold { // the slot given back meanwhile, the recognizer kept
		defer p.free(r)
		p.cpu.release()
		main, ok := shotMat(img, j, o)
		if ok {
			defer main.Close()
		}
		p.cpu.acquire(underway(j))
		return sr.finish(img, main, ok, j, o, f)
	} else if shot {
		p.free(r)
		turn()
		main, ok := shotMat(img, j, o)
		if ok {
			defer main.Close()
		}
		t = time.Now()
		sr = p.held(underway(j)).(stagedRecognizer)
		o.since(stageCPU, t)
		defer p.free(sr)
		return sr.finish(img, main, ok, j, o, f)
	}
	defer p.free(r)
	return sr.finish(img, gocv.Mat{}, false, j, o, f)
}
