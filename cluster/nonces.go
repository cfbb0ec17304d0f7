package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NonceBucket holds the nonces of signed controller requests seen by any node, for as long as
// a request could be replayed: a request replayed to another node is a replay there too.
const NonceBucket = "vigil_nonces"

// Nonces is the site's shared nonce store.
type Nonces struct {
	kv jetstream.KeyValue
}

// OpenNonces creates the bucket if needed; entries live ttl (twice the signature's skew window).
func OpenNonces(ctx context.Context, js jetstream.JetStream, store Store, ttl time.Duration) (*Nonces, error) {
	kv, err := openBucket(ctx, js, store.bucket(NonceBucket, "vigil: nonces of signed controller requests, site-wide", ttl))
	if err != nil {
		return nil, fmt.Errorf("cluster: nonce bucket: %w", err)
	}
	return &Nonces{kv: kv}, nil
}

// Claim records key (a door and a nonce) and reports whether it was fresh: false means some node
// saw it already. It waits at most 500 ms for the bus.
func (n *Nonces) Claim(key string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	sum := sha256.Sum256([]byte(key)) // any nonce, any door id: a valid key
	_, err := n.kv.Create(ctx, hex.EncodeToString(sum[:]), nil)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}
