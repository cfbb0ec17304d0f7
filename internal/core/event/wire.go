package event

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// An envelope carries an event on the bus: JSON metadata, then the face embedding and the
// snapshot JPEG as raw bytes. Binary parts in JSON cost base64 on both sides and most of the
// store's decode time; here they are copied once.
//
// Layout: 0x01 (version), three uvarint lengths (meta, embedding, snapshot), then the parts in
// that order. A message that starts with '{' is a plain JSON event (tools and hand-written
// tests): it is all metadata, with the embedding as "embedding_le" (base64) or "embedding" (a
// number array) and the snapshot base64.
const envelopeV1 = 0x01

// Limits of a well-formed event.
const (
	MaxIDLen       = 64
	MaxEmbedding   = 4 * 2048 // bytes: 2,048 float32
	maxCameraBytes = 256
)

// ErrMalformed means a bus message is not an event. Consumers acknowledge and count such a
// message; retrying it cannot help.
var ErrMalformed = errors.New("event: malformed")

// Pack is the event's bus form.
func (e *Event) Pack() []byte {
	meta := *e
	meta.Embedding, meta.Snapshot = nil, nil
	js, _ := json.Marshal(&meta) // an Event always marshals: no maps, channels or NaN-able JSON numbers escape json
	return packParts(js, e.Embedding, e.Snapshot)
}

func packParts(meta, embedding, snapshot []byte) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen32+len(meta)+len(embedding)+len(snapshot))
	b = append(b, envelopeV1)
	b = binary.AppendUvarint(b, uint64(len(meta)))
	b = binary.AppendUvarint(b, uint64(len(embedding)))
	b = binary.AppendUvarint(b, uint64(len(snapshot)))
	b = append(b, meta...)
	b = append(b, embedding...)
	return append(b, snapshot...)
}

// envelope is an unpacked bus message; its slices alias the message.
type envelope struct {
	meta, embedding, snapshot []byte
}

func unpackParts(data []byte) (envelope, error) {
	if len(data) == 0 {
		return envelope{}, fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if data[0] == '{' {
		return envelope{meta: data}, nil
	}
	if data[0] != envelopeV1 {
		return envelope{}, fmt.Errorf("%w: unknown version byte 0x%02x", ErrMalformed, data[0])
	}
	rest := data[1:]
	var n [3]uint64
	total := uint64(0)
	for i := range n {
		v, k := binary.Uvarint(rest)
		if k <= 0 {
			return envelope{}, fmt.Errorf("%w: bad length %d", ErrMalformed, i)
		}
		if v > uint64(len(data)) {
			return envelope{}, fmt.Errorf("%w: a %d-byte part in a %d-byte message", ErrMalformed, v, len(data))
		}
		n[i], rest = v, rest[k:]
		total += v
	}
	if total != uint64(len(rest)) {
		return envelope{}, fmt.Errorf("%w: parts of %d bytes, %d bytes present", ErrMalformed, total, len(rest))
	}
	part := func(l uint64) []byte {
		if l == 0 {
			return nil
		}
		p := rest[:l:l]
		rest = rest[l:]
		return p
	}
	return envelope{meta: part(n[0]), embedding: part(n[1]), snapshot: part(n[2])}, nil
}

// Unpack reads and checks one bus message. The event's Embedding and Snapshot alias data.
func Unpack(data []byte) (*Event, error) {
	env, err := unpackParts(data)
	if err != nil {
		return nil, err
	}
	e := &Event{}
	if err := json.Unmarshal(env.meta, e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.embedding != nil {
		e.Embedding = env.embedding
	} else if e.Embedding == nil && bytes.Contains(env.meta, []byte(`"embedding"`)) {
		// A hand-written plain-JSON event may give its embedding as a number array.
		var w struct {
			Vector []float32 `json:"embedding"`
		}
		if err := json.Unmarshal(env.meta, &w); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		e.Embedding = PackVector(w.Vector)
	}
	if env.snapshot != nil {
		e.Snapshot = env.snapshot
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	if e.First.IsZero() {
		e.First = e.Time
	}
	return e, nil
}

// check is what every consumer may rely on.
func (e *Event) check() error {
	switch {
	case e.ID == "" || len(e.ID) > MaxIDLen:
		return fmt.Errorf("%w: id %q", ErrMalformed, truncate(e.ID))
	case e.Camera == "" || len(e.Camera) > maxCameraBytes || e.Kind == "":
		return fmt.Errorf("%w: %s has no camera or kind", ErrMalformed, e.ID)
	case e.Time.IsZero():
		return fmt.Errorf("%w: %s has no time", ErrMalformed, e.ID)
	case len(e.Embedding)%4 != 0 || len(e.Embedding) > MaxEmbedding:
		return fmt.Errorf("%w: %s embedding has %d bytes", ErrMalformed, e.ID, len(e.Embedding))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > MaxIDLen {
		return s[:MaxIDLen] + "…"
	}
	return s
}
