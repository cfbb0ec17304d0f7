package pipeline

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/vigil-oss/vigil/internal/bus"
)

// BusPublisher publishes events as JSON on vigil.events.<kind>.<camera>.
type BusPublisher struct {
	Bus *bus.Bus
}

// Publish implements Publisher.
func (b BusPublisher) Publish(ctx context.Context, e *Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.Bus.Publish(ctx, Subject(e.Kind, e.Camera), e.ID, data)
}

// Subject is the bus subject of an event; camera ids are made subject-safe.
func Subject(kind, camera string) string {
	safe := strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\n':
			return '_'
		}
		return r
	}, camera)
	return bus.EventsSubject + "." + kind + "." + safe
}
