package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bucketWait is how long a node keeps asking for a bucket the bus cannot make yet: a site's NATS
// servers starting with vigil have no JetStream leader, or too few peers for the replicas, for a
// few seconds (a compose site on a slow machine: one node gave up after one 5 s request).
const bucketWait = 60 * time.Second

// openBucket creates or updates a KV bucket, retrying while the bus cannot answer yet, up to
// bucketWait or the end of ctx.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	deadline := time.Now().Add(bucketWait)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err == nil || !busStarting(err) || time.Now().After(deadline) {
			return kv, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

// busStarting says err is the bus not ready yet (no answer in time, no peers to place the
// replicas on), not a refusal that asking again would not change (a bus without JetStream fails
// at once).
func busStarting(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.As(err, &api) && api.Code == 503
}
