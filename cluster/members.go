// Package cluster is how the nodes of one site know each other: each node announces itself
// (id, advertise URL, capacity, version, cameras held) in a JetStream key-value bucket and renews
// the entry every couple of seconds; an entry not renewed within the bucket's TTL expires, so a
// dead node drops out by itself and a stopping node removes its own entry at once. A single
// `vigil serve` is a cluster of one.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of nodes.
const Bucket = "vigil_nodes"

// StatesBucket holds each node's camera states (key the node id, value a JSON list), written
// with its heartbeat: any node answers for every camera of the site.
const StatesBucket = "vigil_camera_states"

// Timing of membership: a node renews its entry every Every and is gone TTL after its last one.
// TTL is the camera leases' (LeaseTTL): a dead node leaves the membership no later than its
// leases expire, so its cameras go straight to the nodes preferred among the living.
const (
	Every = 2 * time.Second
	TTL   = LeaseTTL
)

// Store is where the cluster's buckets live: the bus's storage (memory for an embedded bus
// without a data folder, files otherwise) and how many servers of a NATS cluster keep each.
type Store struct {
	Storage  jetstream.StorageType
	Replicas int
}

func (s Store) bucket(name, description string, ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: name, Description: description, TTL: ttl, History: 1, Storage: s.Storage, Replicas: max(s.Replicas, 1)}
}

// Node is one node's announcement.
type Node struct {
	ID        string    `json:"id"`
	Advertise string    `json:"advertise"` // the URL other nodes and browsers reach it on
	Capacity  float64   `json:"capacity"`  // relative weight for placing cameras
	Version   string    `json:"version"`
	Cameras   int       `json:"cameras"` // cameras it runs
	Started   time.Time `json:"started"`
	Seen      time.Time `json:"last_heartbeat"`
	// Leaving is set while the node stops: it hands its cameras over and is preferred for none.
	Leaving bool `json:"leaving,omitempty"`
	// Roles are what the node does (cameras, api, doors, search); empty: all.
	Roles []string `json:"roles,omitempty"`
}

// Has reports whether the node has role.
func (n Node) Has(role string) bool {
	return len(n.Roles) == 0 || slices.Contains(n.Roles, role)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// CheckID validates a node id (a key of the bucket).
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("cluster: node id %q: 1–64 letters, digits, '_' or '-'", id)
	}
	return nil
}

// Members is this node's membership: its heartbeat and everyone's entries.
type Members struct {
	kv     jetstream.KeyValue
	states jetstream.KeyValue
	self   Node
	report Report
	log    *slog.Logger

	selfMu sync.Mutex // guards self (Drain changes it)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Report says, at each heartbeat, how many cameras the node runs and their states (a JSON list;
// nil leaves the node's states as they were).
type Report func() (cameras int, states []byte)

// Join creates the buckets if needed (storage: where the bus keeps JetStream data), announces
// self and keeps renewing it until Leave. report, when not nil, is asked at each heartbeat.
func Join(ctx context.Context, js jetstream.JetStream, store Store, self Node, report Report, log *slog.Logger) (*Members, error) {
	if err := CheckID(self.ID); err != nil {
		return nil, err
	}
	kv, err := openBucket(ctx, js, store.bucket(Bucket, "vigil nodes: each renews its entry every 2 s", TTL))
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes bucket: %w", err)
	}
	states, err := openBucket(ctx, js, store.bucket(StatesBucket, "vigil camera states: each node's list, renewed with its heartbeat", TTL))
	if err != nil {
		return nil, fmt.Errorf("cluster: camera states bucket: %w", err)
	}
	if self.Started.IsZero() {
		self.Started = time.Now().UTC()
	}
	m := &Members{kv: kv, states: states, self: self, report: report, log: log.With("component", "cluster"), done: make(chan struct{})}
	if err := m.beat(ctx); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.run(hctx)
	m.log.Info("joined the site's cluster", "node", self.ID, "advertise", self.Advertise)
	return m, nil
}

func (m *Members) beat(ctx context.Context) error {
	m.selfMu.Lock()
	n := m.self
	m.selfMu.Unlock()
	var states []byte
	if m.report != nil {
		n.Cameras, states = m.report()
	}
	n.Seen = time.Now().UTC()
	b, _ := json.Marshal(n)
	if _, err := m.kv.Put(ctx, n.ID, b); err != nil {
		return err
	}
	if states != nil {
		if _, err := m.states.Put(ctx, n.ID, states); err != nil {
			return err
		}
	}
	return nil
}

// CameraStates is every live node's camera states (as Report gave them), by node id.
func (m *Members) CameraStates(ctx context.Context) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	keys, err := m.states.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		e, err := m.states.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = e.Value()
	}
	return out, nil
}

func (m *Members) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(Every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, Every)
		err := m.beat(bctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			m.log.Warn("heartbeat not written: other nodes will count this one gone after the TTL", "err", err, "ttl", TTL)
			failing = true
		case err == nil && failing:
			m.log.Info("heartbeat written again")
			failing = false
		}
	}
}

// Self is this node's announcement.
func (m *Members) Self() Node {
	m.selfMu.Lock()
	defer m.selfMu.Unlock()
	return m.self
}

// Drain announces that this node is stopping: from now on it is preferred for no camera, so
// the placement hands its cameras over (a planned stop loses no footage).
func (m *Members) Drain(ctx context.Context) {
	m.selfMu.Lock()
	m.self.Leaving = true
	m.selfMu.Unlock()
	if err := m.beat(ctx); err != nil {
		m.log.Warn("draining: not announced; the other nodes take the cameras as their leases end", "err", err)
	}
}

// Nodes lists the live nodes, by id.
func (m *Members) Nodes(ctx context.Context) ([]Node, error) {
	keys, err := m.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []Node{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(keys))
	for _, k := range keys {
		e, err := m.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or left meanwhile
		}
		if err != nil {
			return nil, err
		}
		var n Node
		if json.Unmarshal(e.Value(), &n) == nil {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Leave stops the heartbeat and removes this node's entry at once (a planned stop; a crash
// leaves it to expire).
func (m *Members) Leave() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	m.cancel = nil
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := m.kv.Delete(ctx, m.self.ID); err != nil {
		m.log.Warn("leaving: own entry not removed; it expires after the TTL", "err", err, "ttl", TTL)
	}
	_ = m.states.Delete(ctx, m.self.ID)
}
