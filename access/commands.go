package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Command is what vigil asks a door controller to do.
type Command struct {
	ID       string    `json:"id"`
	Door     string    `json:"door"`
	Action   string    `json:"action"` // unlock
	PulseMS  int       `json:"pulse_ms"`
	PersonID string    `json:"person_id,omitempty"`
	Reason   string    `json:"reason"`
	Event    string    `json:"event,omitempty"`  // the face event that caused it
	Arrival  time.Time `json:"arrival,omitzero"` // when the video that showed the person reached vigil
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"` // a controller ignores it after this
}

// commands holds each door's pending commands for its controller's long poll. Bounded: a door
// whose controller is away keeps its newest 16, and commands expire after 10 s anyway.
type commands struct {
	mu      sync.Mutex
	pending map[string][]Command
	wake    map[string]chan struct{}
}

func (c *commands) push(cmd Command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending, c.wake = map[string][]Command{}, map[string]chan struct{}{}
	}
	q := append(c.pending[cmd.Door], cmd)
	if len(q) > 16 {
		q = q[len(q)-16:]
	}
	c.pending[cmd.Door] = q
	if w := c.wake[cmd.Door]; w != nil {
		close(w)
		delete(c.wake, cmd.Door)
	}
}

// Commands waits up to wait for commands for door and takes them (expired ones are dropped).
func (e *Engine) Commands(ctx context.Context, door string, wait time.Duration) []Command {
	c := &e.cmds
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.pending == nil {
			c.pending, c.wake = map[string][]Command{}, map[string]chan struct{}{}
		}
		now := e.now()
		var live []Command
		for _, cmd := range c.pending[door] {
			if now.Before(cmd.Expires) {
				live = append(live, cmd)
			}
		}
		delete(c.pending, door)
		c.mu.Unlock()
		if live = e.claimed(live); len(live) > 0 {
			return live
		}
		c.mu.Lock()
		if len(c.pending[door]) > 0 { // came while claiming
			c.mu.Unlock()
			continue
		}
		w := c.wake[door]
		if w == nil {
			w = make(chan struct{})
			c.wake[door] = w
		}
		c.mu.Unlock()
		select {
		case <-w:
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// AutoUnlock decides a person the pipeline recognised at a door's camera (liveness from the
// event) and, when the rules allow, queues an unlock for the door's controller. Same decision
// path and audit as the unlock API.
func (e *Engine) AutoUnlock(ctx context.Context, door string, c CameraFace, event string, arrival time.Time) (Decision, error) {
	s := e.snapshot()
	now := e.now()
	person, liveness := c.Person, c.Liveness
	v, dist := s.decidePerson(door, c, e.factors.claimed(door, now), now, e.inside)
	policy := ""
	if s.doors[door] != nil {
		risk := s.faceRisk(door)
		v = e.factors.pair(risk, door, "face", v, now)
		policy = risk.Effective
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	d, err := e.decide(ctx, door, s, v, map[string]any{"credential": "face", "source": "camera", "event": event, "liveness": liveness,
		"distance": dist, "votes": c.Votes, "model": c.Model, "policy": policy}, id)
	if err != nil || !d.Grant {
		return d, err
	}
	e.queue(s.doors[door], Command{ID: id, Door: door, Action: "unlock", PulseMS: d.PulseMS, PersonID: person, Reason: d.Reason,
		Event: event, Arrival: arrival, Issued: d.Time, Expires: d.Expires})
	return d, nil
}

// queue puts a command on the door's long-poll channel and hands it to every OnCommand sink.
func (e *Engine) queue(door *Door, cmd Command) {
	e.cmds.push(cmd)
	e.peers.send("cmd", peerMessage{Command: &cmd})
	e.mu.RLock()
	sinks := e.sinks
	e.mu.RUnlock()
	for _, fn := range sinks {
		fn(cmd, door.Key)
	}
}

// OnCommand registers fn to receive every command queued for a controller, with the door's key
// to sign it (the MQTT bridge). fn must not block.
func (e *Engine) OnCommand(fn func(cmd Command, key []byte)) {
	e.mu.Lock()
	e.sinks = append(e.sinks, fn)
	e.mu.Unlock()
}

// DoorsWithCamera lists the doors a camera's faces open (do not modify the slice).
func (e *Engine) DoorsWithCamera(camera string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.snap.byCam[camera]
}

// FaceTemplates lists every enrolled template (the pipeline's matcher recognises these people).
func (e *Engine) FaceTemplates() (persons []string, embeddings [][]float32) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	f := e.snap.faces
	for i, p := range f.person {
		persons = append(persons, p)
		embeddings = append(embeddings, f.vector(i))
	}
	return persons, embeddings
}

// OnReload registers fn to run after every reload (the pipeline's gallery follows enrolments).
func (e *Engine) OnReload(fn func()) {
	e.mu.Lock()
	e.onReload = append(e.onReload, fn)
	e.mu.Unlock()
}
