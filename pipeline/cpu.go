package pipeline

import (
	"runtime"
	"sync"
)

// cpuSlots lets at most n of the pipeline's native calls (decodes and model runs) run at once,
// and hands a freed slot to the waiter of the highest lane: door cameras' work first, then
// cameras with a track in progress, then the rest, first come first served within a lane (the
// lanes are dropQueue's). Without it every camera's decoder goroutine and every worker runs its
// C code on its own thread, the kernel shares the cores among them all, and a door frame's
// detection crawls at a fraction of a core while a burst of street key frames is decoded. With
// it a door frame waits at most for the native calls already running (a few to a few tens of
// milliseconds) and then has a core to itself. The Go side (RTSP, the motion gate, tracking)
// is not counted: it is light and must never wait behind the models.
type cpuSlots struct {
	mu      sync.Mutex
	free    int
	waiters []*slotWaiter // in arrival order
}

// slotWaiter is one acquire waiting.
type slotWaiter struct {
	ch   chan struct{}
	lane int
}

// newCPUSlots returns slots for n native calls at once; n ≤ 0 means one per core
// (GOMAXPROCS). A nil *cpuSlots lets every call run at once (the unscheduled pipeline).
func newCPUSlots(n int) *cpuSlots {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &cpuSlots{free: n}
}

// acquire waits for a slot for work of the lane.
func (c *cpuSlots) acquire(lane int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.free > 0 { // free slots mean nobody waits: release hands a slot to a waiter first
		c.free--
		c.mu.Unlock()
		return
	}
	w := &slotWaiter{ch: make(chan struct{}), lane: lane}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	<-w.ch // the slot is handed over by release, already counted
}

// release frees a slot: to the first waiter of the highest lane (a scan: waiters are at most
// the workers and the cameras), or back to the pool.
func (c *cpuSlots) release() {
	if c == nil {
		return
	}
	c.mu.Lock()
	best := c.first(laneRest + 1)
	if best < 0 {
		c.free++
		c.mu.Unlock()
		return
	}
	w := c.waiters[best]
	c.waiters = append(c.waiters[:best], c.waiters[best+1:]...)
	c.mu.Unlock()
	close(w.ch)
}

// yield lets work of a higher lane than the caller's go first: when one waits, the caller's
// slot is handed to it and the caller waits, first in its lane, for the next one. Long work
// held in a slot (a shot decoded forward through a GOP, one frame at a time) calls it between
// its steps, so that a door frame waits for one step of it, not for all of them.
func (c *cpuSlots) yield(lane int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	best := c.first(lane)
	if best < 0 {
		c.mu.Unlock()
		return
	}
	w := c.waiters[best]
	me := &slotWaiter{ch: make(chan struct{}), lane: lane}
	c.waiters = append(c.waiters[:best], c.waiters[best+1:]...)
	c.waiters = append([]*slotWaiter{me}, c.waiters...) // first of its lane
	c.mu.Unlock()
	close(w.ch)
	<-me.ch
}

// first is the index of the first waiter of the highest lane above below, -1 for none. Called
// with mu held.
func (c *cpuSlots) first(below int) int {
	best, bestLane := -1, below
	for i, w := range c.waiters {
		if w.lane < bestLane {
			best, bestLane = i, w.lane
		}
	}
	return best
}

// underway is the lane of a job's work once begun (its shot, and the rest of it after the
// shot): at least that of a track in progress, ahead of other cameras' new work, since a worker
// waits on it.
func underway(j *Job) int { return min(laneOf(j), laneBusy) }
