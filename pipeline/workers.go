package pipeline

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// Job is one sampled frame offered to a recognizer pool. BGR is immutable Go memory, shared
// read-only by the pools it was offered to; each worker makes its own Mat from it.
type Job struct {
	Camera  string
	Seq     uint64
	PTS     time.Duration
	Time    time.Time
	Arrival time.Time
	W, H    int
	BGR     []byte
	// Priority jobs are taken first: a door camera's frame, where someone waits at the door.
	Priority bool
	// Done receives the observation, from the worker's goroutine.
	Done func(*Observation)
}

// Recognizer runs one kind of recognition on a frame. Each worker owns one.
type Recognizer interface {
	Kind() string
	Recognize(img gocv.Mat, o *Observation) error
	Close()
}

// Pool is a set of workers of one recognizer kind behind one bounded drop-oldest queue.
type Pool struct {
	kind    string
	q       *dropQueue
	workers []Recognizer
	metrics *Metrics
	log     *slog.Logger
	wg      sync.WaitGroup
}

// NewPool creates n workers with newRec (each owning its models) and a queue of size jobs.
func NewPool(kind string, n, size int, newRec func() (Recognizer, error), m *Metrics, log *slog.Logger) (*Pool, error) {
	p := &Pool{kind: kind, metrics: m, log: log.With("component", "pipeline", "pool", kind)}
	p.q = newDropQueue(size, func(j *Job) { m.dropped(j.Camera, kind, "queue_full") })
	for i := 0; i < n; i++ {
		r, err := newRec()
		if err != nil {
			p.closeWorkers()
			return nil, fmt.Errorf("pipeline: %s worker %d: %w", kind, i, err)
		}
		p.workers = append(p.workers, r)
	}
	return p, nil
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
	for _, w := range p.workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.work(ctx, w)
		}()
	}
	p.wg.Wait()
	p.closeWorkers()
}

func (p *Pool) closeWorkers() {
	for _, w := range p.workers {
		w.Close()
	}
	p.workers = nil
}

func (p *Pool) work(ctx context.Context, r Recognizer) {
	for {
		j, ok := p.q.Get(ctx)
		if !ok {
			return
		}
		p.metrics.queueLen.WithLabelValues(p.kind).Set(float64(p.q.Len()))
		t0 := time.Now()
		o := &Observation{Camera: j.Camera, Seq: j.Seq, PTS: j.PTS, Time: j.Time, Arrival: j.Arrival, Width: j.W, Height: j.H, Kind: r.Kind()}
		if err := p.process(r, j, o); err != nil {
			// One bad frame never stops the worker or the others.
			p.metrics.errors.WithLabelValues(j.Camera, p.kind).Inc()
			p.log.Warn("recognizer error", "camera", j.Camera, "err", err)
		}
		p.metrics.latency.WithLabelValues(p.kind).Observe(time.Since(t0).Seconds())
		j.Done(o)
	}
}

func (p *Pool) process(r Recognizer, j *Job, o *Observation) error {
	view, err := gocv.NewMatFromBytes(j.H, j.W, gocv.MatTypeCV8UC3, j.BGR)
	if err != nil {
		return err
	}
	img := view.Clone() // the worker's own native copy; the Go buffer stays shared read-only
	view.Close()
	defer img.Close()
	return r.Recognize(img, o)
}

// FaceRecognizer finds, describes and crops faces.
type FaceRecognizer struct {
	Faces   *dnn.Faces
	MinFace float32 // faces smaller than this (px) are ignored; default 36
}

// Kind implements Recognizer.
func (f *FaceRecognizer) Kind() string { return KindFace }

// Close implements Recognizer.
func (f *FaceRecognizer) Close() { f.Faces.Close() }

// Recognize implements Recognizer.
func (f *FaceRecognizer) Recognize(img gocv.Mat, o *Observation) error {
	min := f.MinFace
	if min == 0 {
		min = 36
	}
	res, err := f.Faces.Analyze(img)
	for _, r := range res {
		if r.Box.H < min || atEdge(r.Box, img.Cols(), img.Rows()) {
			continue
		}
		o.Faces = append(o.Faces, FaceDet{FaceResult: r, Crop: cropOf(img, r.Box, 1.8, 256)})
	}
	return err
}

// PlateRecognizer finds and reads plates.
type PlateRecognizer struct {
	Plates *dnn.Plates
}

// Kind implements Recognizer.
func (p *PlateRecognizer) Kind() string { return KindPlate }

// Close implements Recognizer.
func (p *PlateRecognizer) Close() { p.Plates.Close() }

// Recognize implements Recognizer.
func (p *PlateRecognizer) Recognize(img gocv.Mat, o *Observation) error {
	res, err := p.Plates.Read(img)
	for _, r := range res {
		// A plate cut by the frame edge reads as a fragment ("粤", "B123"); the car is still
		// coming or going, and the next frame shows it whole.
		if len([]rune(r.Text)) < 6 || atEdge(r.Box, img.Cols(), img.Rows()) {
			continue
		}
		o.Plates = append(o.Plates, PlateDet{Plate: r, Crop: cropOf(img, r.Box, 2.5, 480)})
	}
	return err
}

// atEdge reports whether a box touches the frame's border: the object is not wholly in view.
func atEdge(b recognizers.Box, w, h int) bool {
	const m = 2
	return b.X < m || b.Y < m || b.X+b.W > float32(w-m) || b.Y+b.H > float32(h-m)
}

// cropOf copies the box grown by scale around its centre, downscaled to at most maxSide, into Go
// memory.
func cropOf(img gocv.Mat, b recognizers.Box, scale float32, maxSide int) *Crop {
	cx, cy := b.X+b.W/2, b.Y+b.H/2
	w, h := b.W*scale, b.H*scale
	r := image.Rect(int(cx-w/2), int(cy-h/2), int(cx+w/2), int(cy+h/2)).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Dx() < 2 || r.Dy() < 2 {
		return nil
	}
	roi := img.Region(r)
	defer roi.Close()
	out := roi
	if m := max(r.Dx(), r.Dy()); m > maxSide {
		s := float64(maxSide) / float64(m)
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(roi, &small, image.Pt(max(1, int(float64(r.Dx())*s)), max(1, int(float64(r.Dy())*s))), 0, 0, gocv.InterpolationArea)
		out = small
	}
	cont := out.Clone() // continuous memory
	defer cont.Close()
	return &Crop{W: cont.Cols(), H: cont.Rows(), BGR: append([]byte(nil), cont.ToBytes()...)}
}
