package rtsp

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/vigil-oss/vigil/streams"
)

// Pool owns the camera sessions of a node. Each session runs in its own goroutine, which the
// pool waits for on Remove and Close.
type Pool struct {
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*entry
	closed   bool
	gopUnits int
	gopBytes int
}

type entry struct {
	s      *Session
	cancel context.CancelFunc
	done   chan struct{}
}

// NewPool returns an empty pool.
func NewPool(log *slog.Logger) *Pool {
	return &Pool{log: log, sessions: map[string]*entry{}}
}

// KeepGOP makes every camera's stream keep its current GOP (streams.Stream.KeepGOP), for live
// viewers that start at once. Cameras added before the call keep theirs too.
func (p *Pool) KeepGOP(maxUnits, maxBytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gopUnits, p.gopBytes = maxUnits, maxBytes
	for _, e := range p.sessions {
		e.s.stream.KeepGOP(maxUnits, maxBytes)
	}
}

// Add starts a session for cfg. The camera's stream is returned so readers can attach.
func (p *Pool) Add(cfg Config) (*Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("rtsp: pool closed")
	}
	if _, ok := p.sessions[cfg.ID]; ok {
		return nil, fmt.Errorf("rtsp: camera %q already exists", cfg.ID)
	}
	st := streams.NewStream()
	if p.gopUnits > 0 {
		st.KeepGOP(p.gopUnits, p.gopBytes)
	}
	s := NewSession(cfg, st, p.log)
	ctx, cancel := context.WithCancel(context.Background())
	e := &entry{s: s, cancel: cancel, done: make(chan struct{})}
	p.sessions[cfg.ID] = e
	go func() {
		defer close(e.done)
		s.Run(ctx)
	}()
	return s, nil
}

// Remove stops a camera, closes its stream (its readers see ErrClosed) and waits for it.
func (p *Pool) Remove(id string) bool {
	p.mu.Lock()
	e, ok := p.sessions[id]
	delete(p.sessions, id)
	p.mu.Unlock()
	if !ok {
		return false
	}
	stop(e)
	return true
}

func stop(e *entry) {
	e.cancel()
	<-e.done
	e.s.stream.Close()
}

// Get returns a camera's session.
func (p *Pool) Get(id string) (*Session, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.sessions[id]
	if !ok {
		return nil, false
	}
	return e.s, true
}

// Statuses returns every camera's status, sorted by id.
func (p *Pool) Statuses() []Status {
	p.mu.Lock()
	list := make([]*Session, 0, len(p.sessions))
	for _, e := range p.sessions {
		list = append(list, e.s)
	}
	p.mu.Unlock()
	out := make([]Status, len(list))
	for i, s := range list {
		out[i] = s.Status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close stops every session and waits for all of them.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	all := p.sessions
	p.sessions = map[string]*entry{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop(e)
		}()
	}
	wg.Wait()
}
