package pipeline

import (
	"context"
	"sync"
)

// dropQueue is a bounded queue with three lanes, taken in order: door cameras' frames (someone
// waits at a door), frames of cameras with a track in progress (a passage being followed), and
// the rest, one frame per camera, in turn: a camera's newer frame takes its waiting one's place,
// so over capacity every quiet camera still gets its turn instead of the busiest filling the
// queue. It never blocks: when full it drops the oldest job of the lowest lane that holds one,
// or the newcomer when every queued job ranks above it. Fresh frames matter more than old ones.
// Every drop is reported to onDrop with its reason.
type dropQueue struct {
	mu     sync.Mutex
	lanes  [3]ring // laneDoor, laneBusy, laneRest
	size   int
	notify chan struct{}
	onDrop func(j *Job, reason string)
}

// Lanes, and the reasons a job is dropped.
const (
	laneDoor, laneBusy, laneRest = 0, 1, 2

	dropFull       = "queue_full" // the queue was full of newer or higher-ranked frames
	dropSuperseded = "superseded" // the camera's newer frame took its place in the rest lane
)

func laneOf(j *Job) int {
	switch {
	case j.Priority:
		return laneDoor
	case j.Busy:
		return laneBusy
	}
	return laneRest
}

// ring is a FIFO of jobs in a fixed buffer.
type ring struct {
	buf     []*Job
	head, n int
}

func (r *ring) push(j *Job) {
	r.buf[(r.head+r.n)%len(r.buf)] = j
	r.n++
}

func (r *ring) pop() *Job {
	j := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return j
}

func newDropQueue(size int, onDrop func(j *Job, reason string)) *dropQueue {
	q := &dropQueue{size: size, notify: make(chan struct{}, 1), onDrop: onDrop}
	for i := range q.lanes {
		q.lanes[i].buf = make([]*Job, size)
	}
	return q
}

func (q *dropQueue) Put(j *Job) {
	lane := laneOf(j)
	q.mu.Lock()
	dropped, reason := q.place(j, lane)
	q.mu.Unlock()
	if dropped != nil && q.onDrop != nil {
		q.onDrop(dropped, reason)
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// place queues j in lane and returns the job it displaced, if any. Called with mu held.
func (q *dropQueue) place(j *Job, lane int) (*Job, string) {
	if lane == laneRest {
		r := &q.lanes[laneRest]
		for i := 0; i < r.n; i++ {
			k := (r.head + i) % len(r.buf)
			if old := r.buf[k]; old.Camera == j.Camera {
				r.buf[k] = j // its turn stays; the frame is the newest
				return old, dropSuperseded
			}
		}
	}
	var dropped *Job
	if q.lanes[0].n+q.lanes[1].n+q.lanes[2].n == q.size {
		low := laneRest
		for q.lanes[low].n == 0 {
			low--
		}
		if low < lane {
			return j, dropFull // every queued frame ranks above it
		}
		dropped = q.lanes[low].pop()
	}
	q.lanes[lane].push(j)
	return dropped, dropFull
}

// grow makes room for size jobs (never less than it has): a node analysing hundreds of cameras
// gets bursts of frames from cameras whose frames come in step, and a queue of 8 would drop
// them while the workers are idle a moment later.
func (q *dropQueue) grow(size int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if size <= q.size {
		return
	}
	for i := range q.lanes {
		r := &q.lanes[i]
		buf := make([]*Job, size)
		for k := 0; k < r.n; k++ {
			buf[k] = r.buf[(r.head+k)%len(r.buf)]
		}
		r.buf, r.head = buf, 0
	}
	q.size = size
}

// Get blocks until a job is available or ctx ends; priority jobs first.
func (q *dropQueue) Get(ctx context.Context) (*Job, bool) {
	for {
		q.mu.Lock()
		for i := range q.lanes {
			if q.lanes[i].n == 0 {
				continue
			}
			j := q.lanes[i].pop()
			more := q.lanes[0].n+q.lanes[1].n+q.lanes[2].n > 0
			q.mu.Unlock()
			if more { // wake another worker
				select {
				case q.notify <- struct{}{}:
				default:
				}
			}
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.notify:
		}
	}
}

// Len is the number of queued jobs.
func (q *dropQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lanes[0].n + q.lanes[1].n + q.lanes[2].n
}
