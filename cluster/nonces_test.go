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

func openTestNonces(t testing.TB, url string) *Nonces {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	n, err := OpenNonces(context.Background(), js, Store{Storage: jetstream.MemoryStorage}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNonceClaimedOnce: a nonce is fresh once, then a replay, whichever node asks.
func TestNonceClaimedOnce(t *testing.T) {
	url := testenv.StartNATS(t)
	a, b := openTestNonces(t, url), openTestNonces(t, url) // two nodes' connections
	if fresh, err := a.Claim("gate\x00nonce-1"); !fresh || err != nil {
		t.Fatalf("first claim: %v %v", fresh, err)
	}
	if fresh, err := b.Claim("gate\x00nonce-1"); fresh || err != nil {
		t.Fatalf("replay: %v %v", fresh, err)
	}
	if fresh, _ := b.Claim("other-door\x00nonce-1"); !fresh {
		t.Fatal("the same nonce at another door is another request")
	}
}

// BenchmarkNonceClaim is what the site-wide replay check adds to each controller request: one
// key-value create on a NATS server over loopback.
func BenchmarkNonceClaim(b *testing.B) {
	n := openTestNonces(b, testenv.StartNATS(b))
	b.ResetTimer()
	for i := range b.N {
		if _, err := n.Claim(fmt.Sprintf("gate\x00nonce-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}
