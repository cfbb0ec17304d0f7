package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestPreferMovesAboutOneNth: rendezvous placement spreads cameras evenly over the nodes, by
// capacity, and a node joining takes about 1/N of them while no camera moves between the others.
func TestPreferMovesAboutOneNth(t *testing.T) {
	nodes := []Node{{ID: "a", Capacity: 1}, {ID: "b", Capacity: 1}, {ID: "c", Capacity: 1}}
	const n = 1231
	before := map[string]string{}
	count := map[string]int{}
	for i := range n {
		cam := fmt.Sprintf("cam%04d", i)
		before[cam] = Prefer(cam, nodes)
		count[before[cam]]++
	}
	for _, nd := range nodes {
		if c := count[nd.ID]; c < n/3-80 || c > n/3+80 {
			t.Errorf("node %s gets %d of %d cameras", nd.ID, c, n)
		}
	}
	nodes = append(nodes, Node{ID: "d", Capacity: 2}) // twice the capacity: 2/5 of the cameras
	moved, wrong := 0, 0
	for cam, was := range before {
		now := Prefer(cam, nodes)
		if now != was {
			moved++
			if now != "d" {
				wrong++
			}
		}
	}
	if wrong != 0 || moved < n*2/5-80 || moved > n*2/5+80 {
		t.Errorf("a node of capacity 2 joining moved %d of %d cameras (%d between the old nodes)", moved, n, wrong)
	}
}

// TestLeaseOwnersWatched: node B learns who holds a lease from the bucket's updates (no round
// trip per camera): A's lease at once, its release at once, and a lease A stopped renewing
// (a crash) as free once the TTL has passed; two nodes never both take one camera.
func TestLeaseOwnersWatched(t *testing.T) {
	url := testenv.StartNATS(t)
	open := func(self string) *Leases {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		l, err := OpenLeases(context.Background(), js, Store{Storage: jetstream.MemoryStorage}, self)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := open("node-a"), open("node-b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Watch(ctx)
	owner := func(cam, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := b.Owner(ctx, cam)
			b.mu.Lock()
			watching := b.watching
			b.mu.Unlock()
			if err == nil && got == want && watching {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: owner %q (watching %v, %v), want %q", cam, got, watching, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, cam := range []string{"cam001", "cam002"} {
		if ok, err := a.Acquire(ctx, cam); !ok || err != nil {
			t.Fatalf("a takes %s: %v %v", cam, ok, err)
		}
		owner(cam, "node-a", time.Second)
		if ok, _ := b.Acquire(ctx, cam); ok {
			t.Fatalf("b took %s while a holds it", cam)
		}
	}
	a.Release(ctx, "cam001")
	owner("cam001", "", time.Second)
	// cam002: a stops renewing. B sees it free after the TTL, and takes it.
	owner("cam002", "node-a", time.Second)
	owner("cam002", "", LeaseTTL+2*time.Second)
	// The server drops the entry on its own timer, a moment after: placement retries each round.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok, err := b.Acquire(ctx, "cam002")
		if ok && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b takes the expired lease: %v %v", ok, err)
		}
	}
	owner("cam002", "node-b", time.Second)
}
