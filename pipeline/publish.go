package pipeline

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/vigil-oss/vigil/internal/bus"
)

// BusPublisher publishes events on vigil.events.<kind>.<camera> as bus envelopes: the event as
// JSON, its embedding and snapshot as raw bytes.
type BusPublisher struct {
	Bus *bus.Bus
}

// Publish implements Publisher.
func (b BusPublisher) Publish(ctx context.Context, e *Event) error {
	data, err := EncodeEvent(e)
	if err != nil {
		return err
	}
	return b.Bus.Publish(ctx, Subject(e.Kind, e.Camera), e.ID, data)
}

// EncodeEvent is an event's bus form.
func EncodeEvent(e *Event) ([]byte, error) {
	meta := *e
	meta.EmbeddingLE, meta.Snapshot = nil, nil
	js, err := json.Marshal(&meta)
	if err != nil {
		return nil, err
	}
	return bus.Pack(js, e.EmbeddingLE, e.Snapshot), nil
}

// DecodeEvent reads what EncodeEvent wrote (or a plain JSON event).
func DecodeEvent(data []byte) (*Event, error) {
	env, err := bus.Unpack(data)
	if err != nil {
		return nil, err
	}
	var e Event
	if err := json.Unmarshal(env.Meta, &e); err != nil {
		return nil, err
	}
	if env.Embedding != nil {
		e.EmbeddingLE = env.Embedding
	}
	if env.Snapshot != nil {
		e.Snapshot = env.Snapshot
	}
	return &e, nil
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
