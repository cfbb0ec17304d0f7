package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the key-value bucket of camera leases: one key per camera, its value the
// holding node's id.
const LeaseBucket = "vigil_leases"

// LeaseTTL is how long a lease outlives its holder's last renewal: a dead node's cameras are free
// this long after it stopped renewing.
const LeaseTTL = 6 * time.Second

// ErrLost means a lease is no longer this node's (it expired and another node took it, or it was
// released): the camera must stop here at once.
var ErrLost = errors.New("cluster: lease lost")

// Leases is this node's hold on cameras. Create only if absent, renew by compare-and-swap on the
// revision: two nodes never hold one camera, and the revision fences what a stale holder writes.
type Leases struct {
	kv   jetstream.KeyValue
	self string

	mu   sync.Mutex
	held map[string]uint64 // camera → revision of our entry

	// What Watch has seen of every lease: its holder and when it was last written. A lease not
	// written for LeaseTTL has expired (the bucket drops it without a word).
	owners   map[string]seenLease
	watching bool // owners is current: Owner reads it instead of asking the bus
}

type seenLease struct {
	node string
	at   time.Time
}

// Watch keeps a copy of every lease from the bucket's updates until ctx ends, so that Owner
// costs no round trip (each node would otherwise ask about every camera it does not hold, every
// round). It restarts the watch when the bus drops it.
func (l *Leases) Watch(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := l.kv.WatchAll(ctx)
		if err == nil {
			l.follow(w)
			_ = w.Stop()
		}
		l.mu.Lock()
		l.watching = false
		l.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (l *Leases) follow(w jetstream.KeyWatcher) {
	initial := true
	for e := range w.Updates() {
		l.mu.Lock()
		switch {
		case e == nil: // the initial values are all in
			initial, l.watching = false, true
		case e.Operation() == jetstream.KeyValuePut:
			at := time.Now()
			if initial {
				at = e.Created() // written then, maybe seconds ago
			}
			l.owners[e.Key()] = seenLease{node: string(e.Value()), at: at}
		default:
			delete(l.owners, e.Key())
		}
		l.mu.Unlock()
	}
}

// OpenLeases creates the lease bucket if needed.
func OpenLeases(ctx context.Context, js jetstream.JetStream, store Store, self string) (*Leases, error) {
	kv, err := openBucket(ctx, js, store.bucket(LeaseBucket, "vigil camera leases: key camera id, value the holding node", LeaseTTL))
	if err != nil {
		return nil, fmt.Errorf("cluster: lease bucket: %w", err)
	}
	return &Leases{kv: kv, self: self, held: map[string]uint64{}, owners: map[string]seenLease{}}, nil
}

// Acquire takes camera's lease when nobody holds it (or this node does, from before a restart).
func (l *Leases) Acquire(ctx context.Context, camera string) (bool, error) {
	rev, err := l.kv.Create(ctx, camera, []byte(l.self))
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := l.kv.Get(ctx, camera)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			return false, nil // expired meanwhile: the next round takes it
		case gerr != nil:
			return false, gerr
		case string(e.Value()) != l.self:
			return false, nil
		}
		// Ours from before a restart of this node: take it over by its revision.
		if rev, err = l.kv.Update(ctx, camera, []byte(l.self), e.Revision()); err != nil {
			return false, nil
		}
	} else if err != nil {
		return false, err
	}
	l.mu.Lock()
	l.held[camera] = rev
	l.mu.Unlock()
	return true, nil
}

// Renew keeps camera's lease; ErrLost when it is no longer ours.
func (l *Leases) Renew(ctx context.Context, camera string) error {
	l.mu.Lock()
	rev, ok := l.held[camera]
	l.mu.Unlock()
	if !ok {
		return ErrLost
	}
	nrev, err := l.kv.Update(ctx, camera, []byte(l.self), rev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || errors.Is(err, jetstream.ErrKeyNotFound) {
			delete(l.held, camera)
			return fmt.Errorf("%w: %s: %v", ErrLost, camera, err)
		}
		return err // the bus is away: keep it until the TTL says otherwise
	}
	l.held[camera] = nrev
	return nil
}

// Release gives camera's lease up (a handover or a planned stop): another node may take it at
// once.
func (l *Leases) Release(ctx context.Context, camera string) {
	l.mu.Lock()
	rev, ok := l.held[camera]
	delete(l.held, camera)
	l.mu.Unlock()
	if ok {
		_ = l.kv.Delete(ctx, camera, jetstream.LastRevision(rev))
	}
}

// Holds reports whether this node holds camera's lease, and its revision (the fencing token).
func (l *Leases) Holds(camera string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rev, ok := l.held[camera]
	return rev, ok
}

// Held lists the cameras this node holds.
func (l *Leases) Held() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.held))
	for c := range l.held {
		out = append(out, c)
	}
	return out
}

// Owner is the node holding camera's lease, or "". While Watch runs it answers from its copy.
func (l *Leases) Owner(ctx context.Context, camera string) (string, error) {
	l.mu.Lock()
	if l.watching {
		s, ok := l.owners[camera]
		l.mu.Unlock()
		if !ok || time.Since(s.at) > LeaseTTL {
			return "", nil
		}
		return s.node, nil
	}
	l.mu.Unlock()
	e, err := l.kv.Get(ctx, camera)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(e.Value()), nil
}

// Prefer picks the node that should hold camera: the highest weighted rendezvous score
// (−capacity / ln u, u the camera-and-node hash in (0, 1)). Adding a node moves only the cameras
// that now score highest on it, about 1/N of them; removing one moves only its own.
func Prefer(camera string, nodes []Node) string {
	best, bestScore := "", math.Inf(-1)
	for _, n := range nodes {
		if n.Leaving || !n.Has("cameras") {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(camera))
		h.Write([]byte{0})
		h.Write([]byte(n.ID))
		u := (float64(mix(h.Sum64())>>11) + 0.5) / (1 << 53)
		w := n.Capacity
		if w <= 0 {
			w = 1
		}
		if s := -w / math.Log(u); s > bestScore || s == bestScore && n.ID < best {
			best, bestScore = n.ID, s
		}
	}
	return best
}

// mix is splitmix64's finalizer: FNV's high bits alone change little between similar names.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
