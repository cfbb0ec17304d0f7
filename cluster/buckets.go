package cluster

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/core/bus"
)

// openBucket creates or updates a KV bucket, retrying while the bus cannot answer yet (see
// bus.WhileStarting).
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return bus.WhileStarting(ctx, func() (jetstream.KeyValue, error) { return js.CreateOrUpdateKeyValue(ctx, cfg) })
}
