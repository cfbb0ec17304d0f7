// Package lifecycle runs a node's parts as an ordered list of components: each starts after the
// ones before it, they stop in reverse order (producers before the sinks they write to), and a
// failed start stops what had already started. It also answers readiness: which components are
// not yet started or not ready, and why.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Component is one part of a node.
type Component struct {
	// Name appears in logs and in /readyz.
	Name string
	// Start brings the component up and returns once it is running; work that goes on runs in
	// goroutines the component owns and ends in Stop. ctx bounds the start only.
	Start func(ctx context.Context) error
	// Stop ends what Start began and waits for it. Optional.
	Stop func()
	// Ready reports nil once the component does its job (e.g. models loaded); optional: a
	// started component without Ready is ready.
	Ready func() error
}

// Group is an ordered list of components.
type Group struct {
	log *slog.Logger

	mu       sync.Mutex
	comps    []Component
	started  int  // comps[:started] have started
	starting bool // Start is running
	stopping bool
}

// New returns an empty group.
func New(log *slog.Logger) *Group { return &Group{log: log} }

// Add appends c; components start in the order they were added.
func (g *Group) Add(c Component) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.comps = append(g.comps, c)
}

// ErrStopped means Start was interrupted by Stop or its context.
var ErrStopped = errors.New("lifecycle: stopped while starting")

// Start starts every component in order. When one fails, the ones already started are stopped
// in reverse and the error names the one that failed.
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	g.starting = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.starting = false
		g.mu.Unlock()
	}()
	for {
		g.mu.Lock()
		if g.started == len(g.comps) {
			g.mu.Unlock()
			return nil
		}
		c := g.comps[g.started]
		stopping := g.stopping
		g.mu.Unlock()
		if stopping || ctx.Err() != nil {
			g.Stop()
			return ErrStopped
		}
		t0 := time.Now()
		if err := c.Start(ctx); err != nil {
			g.log.Error("component failed to start; stopping the ones started", "component", c.Name, "err", err)
			g.Stop()
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		g.log.Debug("component started", "component", c.Name, "took", time.Since(t0).Round(time.Millisecond))
		g.mu.Lock()
		if g.stopping { // Stop ran while c was starting: it did not know c
			g.mu.Unlock()
			if c.Stop != nil {
				c.Stop()
			}
			g.Stop()
			return ErrStopped
		}
		g.started++
		g.mu.Unlock()
	}
}

// Stop stops the started components in reverse order. It may be called more than once.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopping = true
	g.mu.Unlock()
	for {
		g.mu.Lock()
		if g.started == 0 {
			g.mu.Unlock()
			return
		}
		g.started--
		c := g.comps[g.started]
		g.mu.Unlock()
		if c.Stop != nil {
			t0 := time.Now()
			c.Stop()
			g.log.Debug("component stopped", "component", c.Name, "took", time.Since(t0).Round(time.Millisecond))
		}
	}
}

// NotReady lists each component that is not ready, with why: not started yet, stopped, or its
// Ready's error. Empty means the node is ready.
func (g *Group) NotReady() []string {
	g.mu.Lock()
	comps, started, stopping := g.comps, g.started, g.stopping
	g.mu.Unlock()
	var out []string
	for i, c := range comps {
		switch {
		case i >= started && stopping:
			out = append(out, c.Name+": stopped")
		case i >= started:
			out = append(out, c.Name+": starting")
		case c.Ready != nil:
			if err := c.Ready(); err != nil {
				out = append(out, c.Name+": "+err.Error())
			}
		}
	}
	if stopping && len(out) == 0 {
		out = append(out, "node: stopping")
	}
	return out
}
