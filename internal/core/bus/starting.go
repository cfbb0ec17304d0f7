package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartWait is how long a node keeps asking for a stream or bucket the bus cannot make yet: a
// site's NATS servers starting with vigil have no JetStream leader, or too few peers for the
// replicas, for a few seconds, and a loaded machine answers a request after its 5 s timeout
// (a compose site on a slow machine: one node gave up after one request).
const StartWait = 60 * time.Second

// WhileStarting calls op until it succeeds, fails with an error that asking again would not
// change (see Starting), StartWait has passed, or ctx ends.
func WhileStarting[T any](ctx context.Context, op func() (T, error)) (T, error) {
	deadline := time.Now().Add(StartWait)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		v, err := op()
		if err == nil || !Starting(err) || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
	}
}

// Starting says err is the bus not ready yet (no answer in time, no peers to place the replicas
// on), not a refusal that asking again would not change (a bus without JetStream fails at once).
func Starting(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.As(err, &api) && api.Code == 503
}
