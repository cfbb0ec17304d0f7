package pipeline

import (
	"context"
	"sync"
)

// dropQueue is a bounded queue with two lanes: priority jobs (door cameras, where someone waits
// at a door) are taken before the others. It never blocks: when full it drops the oldest other
// job, or, when it holds only priority jobs, the oldest of them for a priority job and the
// newcomer for another. Fresh frames matter more than old ones. Every drop is reported to onDrop.
type dropQueue struct {
	mu     sync.Mutex
	lanes  [2]ring // 0: priority, 1: the others
	size   int
	notify chan struct{}
	onDrop func(*Job)
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

func newDropQueue(size int, onDrop func(*Job)) *dropQueue {
	q := &dropQueue{size: size, notify: make(chan struct{}, 1), onDrop: onDrop}
	for i := range q.lanes {
		q.lanes[i].buf = make([]*Job, size)
	}
	return q
}

func (q *dropQueue) Put(j *Job) {
	lane := 1
	if j.Priority {
		lane = 0
	}
	q.mu.Lock()
	var dropped *Job
	if q.lanes[0].n+q.lanes[1].n == q.size {
		switch {
		case q.lanes[1].n > 0:
			dropped = q.lanes[1].pop()
		case lane == 0:
			dropped = q.lanes[0].pop()
		default:
			dropped, j = j, nil
		}
	}
	if j != nil {
		q.lanes[lane].push(j)
	}
	q.mu.Unlock()
	if dropped != nil && q.onDrop != nil {
		q.onDrop(dropped)
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
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
			more := q.lanes[0].n+q.lanes[1].n > 0
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
	return q.lanes[0].n + q.lanes[1].n
}
