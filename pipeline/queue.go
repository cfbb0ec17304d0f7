package pipeline

import (
	"context"
	"sync"
)

// dropQueue is a bounded FIFO that, when full, drops its oldest job to make room: fresh frames
// matter more than old ones. Put never blocks. Every drop is reported to onDrop.
type dropQueue struct {
	mu     sync.Mutex
	buf    []*Job
	head   int
	n      int
	notify chan struct{}
	onDrop func(*Job)
}

func newDropQueue(size int, onDrop func(*Job)) *dropQueue {
	return &dropQueue{buf: make([]*Job, size), notify: make(chan struct{}, 1), onDrop: onDrop}
}

func (q *dropQueue) Put(j *Job) {
	q.mu.Lock()
	var dropped *Job
	if q.n == len(q.buf) {
		dropped = q.buf[q.head]
		q.buf[q.head] = nil
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.buf[(q.head+q.n)%len(q.buf)] = j
	q.n++
	q.mu.Unlock()
	if dropped != nil && q.onDrop != nil {
		q.onDrop(dropped)
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// Get blocks until a job is available or ctx ends.
func (q *dropQueue) Get(ctx context.Context) (*Job, bool) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			j := q.buf[q.head]
			q.buf[q.head] = nil
			q.head = (q.head + 1) % len(q.buf)
			q.n--
			more := q.n > 0
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
	return q.n
}
