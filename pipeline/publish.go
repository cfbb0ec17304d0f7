package pipeline

import (
	"context"

	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/event"
)

// BusPublisher publishes events on their subjects (event.Subject) in their bus form (Pack).
type BusPublisher struct {
	Bus *bus.Bus
}

// Publish implements Publisher.
func (b BusPublisher) Publish(ctx context.Context, e *event.Event) error {
	return b.Bus.Publish(ctx, e.Subject(), e.ID, e.Pack())
}
