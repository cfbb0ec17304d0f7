package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/cluster"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/storage/footage"
)

// placement decides which registered cameras this node runs: those whose lease it holds. Every
// round (each second, and at once when the registry changes) it renews what it holds, hands over
// what another live node is now preferred for, takes what it is preferred for when free, and
// takes a camera nobody has held for orphanRounds rounds (its preferred node is slow or gone).
type placement struct {
	leases *cluster.Leases

	mu         sync.Mutex
	registered []config.Camera
	orphan     map[string]int // camera → rounds seen with no holder

	epochMu sync.Mutex
	epochs  map[string]uint64 // camera → the fence epoch this node took it with (footage.Fence)

	kick chan struct{} // a round now (wake)

	held atomic.Pointer[cluster.Leases] // leases, for readers outside placement (decidesFor)
}

// decidesFor says whether this node decides the doors of a camera's face events (auto-unlock):
// the node that runs the camera, which saw the face. A camera nobody holds (events published by
// hand, or a camera between nodes) is decided by the first node of the site by id, so that an
// event opens a door once, never once per node.
func (n *node) decidesFor(camera string) bool {
	leases := n.placer.held.Load()
	if leases == nil || n.members == nil {
		return true // no placement: a single node decides everything
	}
	if _, held := leases.Holds(camera); held {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if owner, err := leases.Owner(ctx, camera); err != nil || owner != "" {
		return false // another node runs it
	}
	nodes, err := n.members.Nodes(ctx)
	if err != nil {
		return false
	}
	for _, nd := range nodes {
		if !nd.Leaving && nd.Has(config.RoleCameras) {
			return nd.ID == n.members.Self().ID
		}
	}
	return false
}

// roundSubject is where a node that freed cameras asks every node for a placement round now,
// instead of at their next tick: a handed-over camera is taken within milliseconds.
const roundSubject = "vigil.cluster.round"

// wake asks for a round now.
func (p *placement) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// handOverAll is a planned stop's first step: the node announces it is leaving, so it is
// preferred for no camera, and hands each one over (stop here, free the lease, wake the others),
// while its recorders store their segments in progress.
func (n *node) handOverAll() {
	if n.members == nil || n.placer.leases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.members.Drain(ctx)
	n.placeRound(ctx)
}

// epoch is the fence epoch this node holds camera with; 0 when none (no database, or the
// fence could not be written yet).
func (p *placement) epoch(camera string) uint64 {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	return p.epochs[camera]
}

func (p *placement) setEpoch(camera string, e uint64) {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	if p.epochs == nil {
		p.epochs = map[string]uint64{}
	}
	if e == 0 {
		delete(p.epochs, camera)
	} else {
		p.epochs[camera] = e
	}
}

// fence bumps the camera's epoch in PostgreSQL as this node takes it: from now on, writes of
// the node that held it before are refused. It is retried every round until it is written.
func (n *node) fence(ctx context.Context, camera string) {
	if n.st == nil || n.placer.epoch(camera) != 0 {
		return
	}
	e, err := footage.Fence(ctx, n.st.pool, camera, n.members.Self().ID)
	if err != nil {
		n.log.Warn("camera fence not written; its writes are unfenced until it is", "camera", camera, "err", err)
		return
	}
	n.placer.setEpoch(camera, e)
}

// placementRound is how often placement runs.
const placementRound = time.Second

// orphanRounds is how many rounds a camera must be seen with no holder before a node that is
// not its preferred one takes it (its preferred node is gone, slow or cannot run it).
const orphanRounds = 5

// place records the registry's cameras and runs a round.
func (n *node) place(ctx context.Context, cams []config.Camera) {
	n.placer.mu.Lock()
	n.placer.registered = cams
	n.placer.mu.Unlock()
	n.placeRound(ctx)
}

// placeRound runs one round of placement and then reconciles the cameras with what is held.
func (n *node) placeRound(ctx context.Context) {
	p := &n.placer
	p.mu.Lock()
	defer p.mu.Unlock()
	self := n.members.Self().ID
	nodes, err := n.members.Nodes(ctx)
	if err != nil {
		n.log.Warn("cluster nodes not read; keeping the cameras held", "err", err)
		nodes = nil
	}
	alive := map[string]bool{}
	for _, nd := range nodes {
		alive[nd.ID] = true
	}
	registered := map[string]bool{}
	var want []config.Camera
	for _, c := range p.registered {
		registered[c.ID] = true
		if n.placeOne(ctx, c.ID, self, nodes, alive) {
			want = append(want, c)
		}
	}
	for _, id := range p.leases.Held() {
		if !registered[id] {
			p.leases.Release(ctx, id)
			p.setEpoch(id, 0)
		}
	}
	if err := n.reconcile(want); err != nil {
		n.log.Error("cameras not applied", "err", err)
	}
}

// placeOne decides one camera; it reports whether this node runs it after the round.
func (n *node) placeOne(ctx context.Context, id, self string, nodes []cluster.Node, alive map[string]bool) bool {
	p := &n.placer
	pref := cluster.Prefer(id, nodes)
	if _, held := p.leases.Holds(id); held {
		if pref != "" && pref != self && alive[pref] {
			// Hand over: stop here first, then free the lease for the preferred node.
			n.stopRunning(id)
			p.leases.Release(ctx, id)
			p.setEpoch(id, 0)
			_ = n.bus.Broadcast(roundSubject, nil)
			n.log.Info("camera handed over", "camera", id, "to", pref)
			return false
		}
		if err := p.leases.Renew(ctx, id); errors.Is(err, cluster.ErrLost) {
			n.stopRunning(id)
			p.setEpoch(id, 0)
			n.log.Warn("camera lease lost: stopped here", "camera", id, "err", err)
			return false
		}
		n.fence(ctx, id)
		return true
	}
	if n.members.Self().Leaving {
		return false // stopping: it takes nothing more
	}
	take := pref == self || pref == "" && len(nodes) == 0
	if !take {
		owner, err := p.leases.Owner(ctx, id)
		switch {
		case err != nil:
		case owner == "":
			p.orphan[id]++
			// Five rounds: the preferred node takes a freed camera within one or two, even
			// loaded; a non-preferred node taking it first would hand it over again later.
			take = p.orphan[id] >= orphanRounds
		default:
			delete(p.orphan, id)
		}
	}
	if !take {
		return false
	}
	ok, err := p.leases.Acquire(ctx, id)
	if err != nil {
		n.log.Warn("camera lease not taken", "camera", id, "err", err)
	}
	if ok {
		delete(p.orphan, id)
		p.setEpoch(id, 0)
		n.fence(ctx, id)
	}
	return ok
}

// stopRunning stops a camera this node runs, at once (a lease lost or handed over).
func (n *node) stopRunning(id string) {
	n.running.mu.Lock()
	defer n.running.mu.Unlock()
	if _, ok := n.running.cams[id]; ok {
		n.stopCamera(id)
		delete(n.running.cams, id)
		delete(n.running.epochs, id)
	}
}

// releaseAll gives every lease up: a planned stop hands the cameras to the other nodes at once.
func (n *node) releaseAll() {
	if n.placer.leases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, id := range n.placer.leases.Held() {
		n.placer.leases.Release(ctx, id)
	}
}

// cameraOwner is where a camera runs, for the API's live-view relay: the advertise URL of the
// node holding its lease, or local when this node holds it, nobody does, or the bus cannot say.
func (n *node) cameraOwner(ctx context.Context, camera string) (string, bool, error) {
	leases := n.placer.leases
	if leases == nil {
		return "", true, nil
	}
	if _, held := leases.Holds(camera); held {
		return "", true, nil
	}
	owner, err := leases.Owner(ctx, camera)
	if err != nil || owner == "" || owner == n.members.Self().ID {
		return "", true, err
	}
	nodes, err := n.members.Nodes(ctx)
	if err != nil {
		return "", true, err
	}
	for _, nd := range nodes {
		if nd.ID == owner {
			return nd.Advertise, false, nil
		}
	}
	return "", true, nil // its node is gone: the camera is moving
}
