package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// Regions are where the motion gate saw movement, in frame pixels; nil means the whole frame.
	Regions []image.Rectangle
	// Shot, when set, returns the main stream's picture of the same moment: the frame is from a
	// sub-stream, and what is found on it is described on the main picture. Called from a worker.
	Shot func() (*Picture, error)
	// MainSize is the main stream's picture size as last decoded (0, 0 before the first): when
	// a shot cannot be had, the analysed picture is scaled to it, so that the tracker sees one
	// geometry.
	MainSize func() (w, h int)
	// Settled are the camera's face tracks whose passage is already published, where they were
	// last seen: a face found there again is not described (no shot, no embedding) unless its
	// track is due to be verified again (Reverify).
	Settled []Settled
	// Ahead says Shot was asked for as the job was queued (asksAhead, shotAhead): a worker that
	// never calls it counts the shot as unused.
	Ahead bool
	// Priority jobs are taken first: a door camera's frame, where someone waits at the door.
	Priority bool
	// MinFace is the smallest face the camera needs found, in the frame's pixels (0: any): the
	// frame is searched at a smaller scale and each face found refined (Config.DoorMinFace).
	MinFace int
	// Busy jobs come next: the camera has a track in progress.
	Busy bool
	// dropped counts the camera's frames dropped before recognition (its analyser's).
	dropped *atomic.Uint64
	// Done receives the observation, from the worker's goroutine.
	Done func(*Observation)
}

// Recognizer runs one kind of recognition on a frame. Each worker owns one.
type Recognizer interface {
	Kind() string
	Recognize(img gocv.Mat, o *Observation) error
	Close()
}

// FrameRecognizer is a Recognizer that also uses what the analyser knows of the frame: the
// regions that moved and the main stream's picture of the same moment (Job.Regions, Job.Shot).
type FrameRecognizer interface {
	RecognizeFrame(img gocv.Mat, j *Job, o *Observation) error
}

// Pool is a set of workers of one recognizer kind behind one bounded drop-oldest queue.
type Pool struct {
	kind    string
	q       *dropQueue
	workers []Recognizer
	metrics *Metrics
	timers  [2]stageTimer // where its frames' time goes: other cameras', door cameras'
	cpu     *cpuSlots     // the pipeline's (set by New); nil: unscheduled
	log     *slog.Logger
	wg      sync.WaitGroup
}

// NewPool creates n workers with newRec (each owning its models) and a queue of size jobs.
func NewPool(kind string, n, size int, newRec func() (Recognizer, error), m *Metrics, log *slog.Logger) (*Pool, error) {
	p := &Pool{kind: kind, metrics: m, timers: m.stageTimers(kind), log: log.With("component", "pipeline", "pool", kind)}
	p.q = newDropQueue(size, func(j *Job, reason string) {
		m.dropped(j.Camera, kind, reason)
		if j.dropped != nil {
			j.dropped.Add(1)
		}
	})
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
		// The job may be shared with the other pool's worker: what is this worker's goes on o.
		o := &Observation{Camera: j.Camera, Seq: j.Seq, PTS: j.PTS, Time: j.Time, Arrival: j.Arrival, Width: j.W, Height: j.H, Kind: r.Kind(),
			timer: &p.timers[0]}
		if j.Priority {
			o.timer = &p.timers[1]
		}
		if !j.Arrival.IsZero() && !j.Time.IsZero() {
			o.timer.observe(stageIngest, j.Time.Sub(j.Arrival))
			o.since(stageQueue, j.Time)
		}
		if err := p.scheduled(r, j, o); err != nil {
			// One bad frame never stops the worker or the others.
			p.metrics.errors.WithLabelValues(j.Camera, p.kind).Inc()
			p.log.Warn("recognizer error", "camera", j.Camera, "err", err)
		}
		p.metrics.latency.WithLabelValues(p.kind).Observe(time.Since(t0).Seconds())
		j.Done(o)
	}
}

// scheduled processes j in a CPU slot of its lane, given back while the worker waits for the
// main stream's shot (decoded in a slot of its own).
func (p *Pool) scheduled(r Recognizer, j *Job, o *Observation) error {
	if p.cpu == nil {
		return p.process(r, j, o)
	}
	t := time.Now()
	p.cpu.acquire(laneOf(j))
	o.since(stageCPU, t)
	defer p.cpu.release()
	if shot := j.Shot; shot != nil {
		// The job may be shared with the other pool's worker: the wrapped Shot is this
		// worker's copy's.
		lane := underway(j)
		c := *j
		used := false
		c.Shot = func() (*Picture, error) {
			used = true
			p.cpu.release()
			defer p.cpu.acquire(lane)
			return shot()
		}
		defer func() { // a door frame's shot asked for ahead (shotAhead) that no face used
			if !used && j.Ahead && p.kind == KindFace {
				p.metrics.shotsUnused.WithLabelValues(j.Camera).Inc()
			}
		}()
		j = &c
	}
	return p.process(r, j, o)
}

func (p *Pool) process(r Recognizer, j *Job, o *Observation) error {
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
	}
	if fr, ok := r.(FrameRecognizer); ok {
		err := fr.RecognizeFrame(img, j, o)
		if o.Undescribed > 0 {
			p.metrics.undescribed.WithLabelValues(j.Camera).Add(float64(o.Undescribed))
		}
		return err
	}
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
	return f.RecognizeFrame(img, &Job{}, o)
}

// RecognizeFrame implements FrameRecognizer: detection on the moved regions when the gate gave
// some, and description on the main stream's picture when the frame is a sub-stream's.
func (f *FaceRecognizer) RecognizeFrame(img gocv.Mat, j *Job, o *Observation) error {
	var faces []recognizers.Face
	var err error
	t := time.Now()
	faces, err = f.Faces.DetectSized(img, j.Regions, j.MinFace)
	o.since(stageDetect, t)
	if err != nil || len(faces) == 0 {
		return err
	}
	if settledOnly(faces, j, img.Cols(), img.Rows()) {
		// Only faces of passages already published, verified lately: where they are keeps their
		// tracks going; a main-stream shot and embeddings would change no event.
		for _, f := range faces {
			o.Faces = append(o.Faces, FaceDet{FaceResult: dnn.FaceResult{Face: recognizers.Face{Box: f.Box, Score: f.Score}}})
		}
		o.Undescribed = len(faces)
		toMain(img, j, o)
		return nil
	}
	// Liveness only where a face may open a door (a camera linked to one: Job.Priority), or
	// outside the pipeline's cameras (a job without a camera).
	liveness := j.Priority || j.Camera == ""
	target := img
	if main, ok := shotMat(img, j, o); ok {
		defer main.Close()
		target = main
		sx, sy := scaleTo(img, main)
		for i := range faces {
			scaleFace(&faces[i], sx, sy)
		}
	}
	if j.MinFace > 0 { // found at a coarse scale: their landmarks from the picture they are described on
		t = time.Now()
		faces, err = f.refine(target, faces)
		o.since(stageDetect, t)
		if err != nil || len(faces) == 0 {
			return err
		}
	}
	t = time.Now()
	res, err := f.Faces.DescribeWith(target, faces, liveness)
	o.since(stageDescribe, t)
	f.keep(target, res, o)
	return err
}

// refine finds each face again in a small window of img (dnn.Detector.Refine), dropping those
// not found there.
func (f *FaceRecognizer) refine(img gocv.Mat, faces []recognizers.Face) ([]recognizers.Face, error) {
	out := faces[:0]
	for _, fc := range faces {
		r, ok, err := f.Faces.Refine(img, fc)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// keep adds the described faces worth tracking to the observation, each with its crop from
// the picture they were described on.
func (f *FaceRecognizer) keep(target gocv.Mat, res []dnn.FaceResult, o *Observation) {
	min := f.MinFace
	if min == 0 {
		min = 36
	}
	for _, r := range res {
		if r.Box.H < min || atEdge(r.Box, target.Cols(), target.Rows()) {
			continue
		}
		o.Faces = append(o.Faces, FaceDet{FaceResult: r, Crop: cropOf(target, r.Box, 1.8, 256)})
	}
}

// toMain moves the observation's face boxes from the analysed picture's pixels to the main
// stream's, when the frame is a sub-stream's and the main picture's size is known: the tracker
// sees one geometry whichever picture a face was described on.
func toMain(img gocv.Mat, j *Job, o *Observation) {
	if j.MainSize == nil {
		return
	}
	w, h := j.MainSize()
	if w <= 0 || h <= 0 {
		return
	}
	sx, sy := float32(w)/float32(img.Cols()), float32(h)/float32(img.Rows())
	for i := range o.Faces {
		scaleFace(&o.Faces[i].Face, sx, sy)
	}
	o.Width, o.Height = w, h
}

// settledOnly reports whether every face found (in the analysed picture's pixels, w×h) is
// where a settled track was last seen, and that track was described within Reverify (and, for a
// resting one, the face is not the better shot its Grow waits for).
func settledOnly(faces []recognizers.Face, j *Job, w, h int) bool {
	if len(j.Settled) == 0 || w <= 0 || h <= 0 {
		return false
	}
	fw, fh := float32(w), float32(h)
	for _, f := range faces {
		b := recognizers.Box{X: f.Box.X / fw, Y: f.Box.Y / fh, W: f.Box.W / fw, H: f.Box.H / fh}
		found := false
		for _, s := range j.Settled {
			if j.PTS-s.Described < Reverify && (s.Grow == 0 || b.H < s.Grow) && s.At(j.PTS).Overlap(b) >= settledOverlap {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// shotMat asks for the main stream's picture of the frame's moment, when the frame is a
// sub-stream's, and sets the observation's size to it. Without one (no sub-stream, or the main
// stream stalled), the analysed picture is described instead: a worse shot, not a lost passage;
// marked Coarse when it is a sub-stream's (it identifies only at a stricter distance: see
// Observation.Coarse), and scaled to the main stream's size when that is known, so that boxes
// stay in one geometry and a passage is not split into two tracks of different sizes.
func shotMat(img gocv.Mat, j *Job, o *Observation) (gocv.Mat, bool) {
	if j.Shot == nil {
		return gocv.Mat{}, false
	}
	t := time.Now()
	pic, err := j.Shot()
	o.since(stageShot, t)
	if err != nil {
		o.Coarse = true // scaled up or not, the face is the sub-stream's
		if j.MainSize == nil {
			return gocv.Mat{}, false
		}
		w, h := j.MainSize()
		if w <= 0 || h <= 0 {
			return gocv.Mat{}, false
		}
		up := gocv.NewMat()
		gocv.Resize(img, &up, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
		o.Width, o.Height = w, h
		return up, true
	}
	view, err := gocv.NewMatFromBytes(pic.H, pic.W, gocv.MatTypeCV8UC3, pic.BGR)
	if err != nil {
		return gocv.Mat{}, false
	}
	m := view.Clone() // the picture may be shared with another worker's shot
	view.Close()
	o.Width, o.Height = pic.W, pic.H
	return m, true
}

// scaleTo is the factor from the analysed picture's pixels to the main picture's.
func scaleTo(from, to gocv.Mat) (sx, sy float32) {
	return float32(to.Cols()) / float32(from.Cols()), float32(to.Rows()) / float32(from.Rows())
}

// scaleFace moves a face's box and landmarks by sx, sy.
func scaleFace(f *recognizers.Face, sx, sy float32) {
	f.Box = scaleBox(f.Box, sx, sy)
	for k := range f.Landmarks {
		f.Landmarks[k] = scalePoint(f.Landmarks[k], sx, sy)
	}
}

func scaleBox(b recognizers.Box, sx, sy float32) recognizers.Box {
	return recognizers.Box{X: b.X * sx, Y: b.Y * sy, W: b.W * sx, H: b.H * sy}
}

func scalePoint(p recognizers.Point, sx, sy float32) recognizers.Point {
	return recognizers.Point{X: p.X * sx, Y: p.Y * sy}
}

// PlateRecognizer finds and reads plates.
type PlateRecognizer struct {
	Plates *dnn.Plates
	// Closer says which cameras' pictures with no plate are looked at again closer (up to four
	// more detections each): the gates', where a car must not be missed. Nil: none.
	Closer func(camera string) bool
}

// closer sets the reader's second look for the observation's camera (one recognizer per worker).
func (p *PlateRecognizer) closer(o *Observation) {
	p.Plates.Closer = p.Closer != nil && p.Closer(o.Camera)
}

// Kind implements Recognizer.
func (p *PlateRecognizer) Kind() string { return KindPlate }

// Close implements Recognizer.
func (p *PlateRecognizer) Close() { p.Plates.Close() }

// Recognize implements Recognizer.
func (p *PlateRecognizer) Recognize(img gocv.Mat, o *Observation) error {
	p.closer(o)
	res, err := p.Plates.Read(img)
	p.keep(img, res, o)
	return err
}

// RecognizeFrame implements FrameRecognizer: on a sub-stream's frame, plates are found on it and
// read on the main stream's picture of the same moment.
func (p *PlateRecognizer) RecognizeFrame(img gocv.Mat, j *Job, o *Observation) error {
	if j.Shot == nil {
		return p.Recognize(img, o)
	}
	p.closer(o)
	found, err := p.Plates.Find(img)
	if err != nil || len(found) == 0 {
		return err
	}
	target, sx, sy := img, float32(1), float32(1) // without a shot, read on the sub-stream's picture
	if main, ok := shotMat(img, j, o); ok {
		defer main.Close()
		target = main
		sx, sy = scaleTo(img, main)
	}
	var errs []error
	res := found[:0]
	for _, pl := range found {
		pl.Box = scaleBox(pl.Box, sx, sy)
		for k := range pl.Corners {
			pl.Corners[k] = scalePoint(pl.Corners[k], sx, sy)
		}
		if err := p.Plates.ReadAt(target, &pl); err != nil {
			errs = append(errs, err)
			continue
		}
		res = append(res, pl)
	}
	p.keep(target, res, o)
	return errors.Join(errs...)
}

// keep adds the plates read whole to the observation.
func (p *PlateRecognizer) keep(img gocv.Mat, res []dnn.Plate, o *Observation) {
	for _, r := range res {
		// A plate cut by the frame edge reads as a fragment ("粤", "B123"); the car is still
		// coming or going, and the next frame shows it whole.
		if len([]rune(r.Text)) < 6 || atEdge(r.Box, img.Cols(), img.Rows()) {
			continue
		}
		o.Plates = append(o.Plates, PlateDet{Plate: r, Crop: cropOf(img, r.Box, 2.5, 480)})
	}
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
