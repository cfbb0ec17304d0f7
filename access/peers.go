package access

import (
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// PeerSubject is the bus subject (plain NATS, not stored) on which the nodes of a site tell
// each other of door state: PeerSubject.cmd, .passback and .factor.
const PeerSubject = "vigil.doors"

// Peers connects the engine to the site's other nodes. A single node is a site of one and needs
// none of it.
type Peers struct {
	// Self is this node's id: its own messages come back to it and are skipped.
	Self string
	// Publish sends a message to every node (bus.Bus.Broadcast).
	Publish func(subject string, data []byte) error
	// Subscribe delivers the other nodes' messages (bus.Bus.Subscribe).
	Subscribe func(subject string, fn func(subject string, data []byte)) (func(), error)
	// Claim, when set, records a key site-wide and reports whether it was fresh
	// (cluster.Nonces.Claim): a command is delivered by one node only, even when its controller
	// moves from one node's long poll to another's.
	Claim func(key string) (bool, error)
	Log   *slog.Logger
}

// peerMessage is what travels between nodes.
type peerMessage struct {
	Node     string        `json:"node"`
	Command  *Command      `json:"command,omitempty"`
	Passback *passbackMove `json:"passback,omitempty"`
	Factor   *factorChange `json:"factor,omitempty"`
}

type passbackMove struct {
	Person string `json:"person"`
	Area   string `json:"area"`
	Inside bool   `json:"inside"`
}

// peering is the engine's side of Share.
type peering struct {
	mu    sync.Mutex
	p     *Peers
	warns time.Time
}

func (pr *peering) get() *Peers {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.p
}

// send tells the other nodes; a bus away is logged once a minute, and this node goes on
// deciding alone (the doors keep working; the others catch up from PostgreSQL at their start).
func (pr *peering) send(kind string, m peerMessage) {
	p := pr.get()
	if p == nil {
		return
	}
	m.Node = p.Self
	b, _ := json.Marshal(m)
	if err := p.Publish(PeerSubject+"."+kind, b); err != nil {
		pr.mu.Lock()
		warn := time.Since(pr.warns) > time.Minute
		if warn {
			pr.warns = time.Now()
		}
		pr.mu.Unlock()
		if warn && p.Log != nil {
			p.Log.Warn("door state not shared with the other nodes", "kind", kind, "err", err)
		}
	}
}

// Share connects the engine to the site's other nodes until the returned func is called:
// unlocks it queues reach controllers that long-poll any node, and anti-passback moves and
// waiting second factors are the same on every node.
func (e *Engine) Share(p Peers) (stop func(), err error) {
	unsub, err := p.Subscribe(PeerSubject+".>", func(_ string, data []byte) {
		var m peerMessage
		if json.Unmarshal(data, &m) != nil || m.Node == p.Self {
			return
		}
		switch {
		case m.Command != nil:
			if e.now().Before(m.Command.Expires) && e.snapshot().doors[m.Command.Door] != nil {
				e.cmds.push(*m.Command)
			}
		case m.Passback != nil:
			e.pbMu.Lock()
			e.passback[[2]string{m.Passback.Person, m.Passback.Area}] = m.Passback.Inside
			e.pbMu.Unlock()
		case m.Factor != nil:
			e.factors.apply(*m.Factor)
		}
	})
	if err != nil {
		return nil, err
	}
	e.peers.mu.Lock()
	e.peers.p = &p
	e.peers.mu.Unlock()
	e.factors.mu.Lock()
	e.factors.share = func(c factorChange) { e.peers.send("factor", peerMessage{Factor: &c}) }
	e.factors.mu.Unlock()
	return func() {
		unsub()
		e.peers.mu.Lock()
		e.peers.p = nil
		e.peers.mu.Unlock()
		e.factors.mu.Lock()
		e.factors.share = nil
		e.factors.mu.Unlock()
	}, nil
}

// claimed keeps the commands no other node has delivered: each is claimed site-wide before it
// goes to the controller. With the bus away a command is delivered anyway (a second delivery
// is a second pulse of the same door within its 10 s, never a door opened for someone else).
func (e *Engine) claimed(cmds []Command) []Command {
	p := e.peers.get()
	if p == nil || p.Claim == nil {
		return cmds
	}
	out := cmds[:0]
	for _, c := range cmds {
		if fresh, err := p.Claim("command:" + c.ID); fresh || err != nil {
			out = append(out, c)
		}
	}
	return out
}
