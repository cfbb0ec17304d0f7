package bus

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// An envelope carries an event on the bus: JSON metadata, then the face embedding and the
// snapshot JPEG as raw bytes. Binary parts in JSON cost base64 on both sides and most of the
// store's decode time; here they are copied once.
//
// Layout: 0x01 (version), three uvarint lengths (meta, embedding, snapshot), then the parts in
// that order. A message that starts with '{' is a plain JSON event (older publishers, tools,
// hand-written tests): it is all metadata.
const envelopeV1 = 0x01

// Envelope is an unpacked bus message. Its slices alias the message.
type Envelope struct {
	Meta, Embedding, Snapshot []byte
}

// ErrEnvelope means a bus message is neither an envelope nor JSON.
var ErrEnvelope = errors.New("bus: malformed envelope")

// Pack builds an envelope.
func Pack(meta, embedding, snapshot []byte) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen32+len(meta)+len(embedding)+len(snapshot))
	b = append(b, envelopeV1)
	b = binary.AppendUvarint(b, uint64(len(meta)))
	b = binary.AppendUvarint(b, uint64(len(embedding)))
	b = binary.AppendUvarint(b, uint64(len(snapshot)))
	b = append(b, meta...)
	b = append(b, embedding...)
	return append(b, snapshot...)
}

// Unpack splits a message into its parts. Empty parts are nil.
func Unpack(data []byte) (Envelope, error) {
	if len(data) == 0 {
		return Envelope{}, fmt.Errorf("%w: empty message", ErrEnvelope)
	}
	if data[0] == '{' {
		return Envelope{Meta: data}, nil
	}
	if data[0] != envelopeV1 {
		return Envelope{}, fmt.Errorf("%w: unknown version byte 0x%02x", ErrEnvelope, data[0])
	}
	rest := data[1:]
	var n [3]uint64
	total := uint64(0)
	for i := range n {
		v, k := binary.Uvarint(rest)
		if k <= 0 {
			return Envelope{}, fmt.Errorf("%w: bad length %d", ErrEnvelope, i)
		}
		n[i], rest = v, rest[k:]
		total += v
		if v > uint64(len(data)) {
			return Envelope{}, fmt.Errorf("%w: a %d-byte part in a %d-byte message", ErrEnvelope, v, len(data))
		}
	}
	if total != uint64(len(rest)) {
		return Envelope{}, fmt.Errorf("%w: parts of %d bytes, %d bytes present", ErrEnvelope, total, len(rest))
	}
	part := func(l uint64) []byte {
		if l == 0 {
			return nil
		}
		p := rest[:l:l]
		rest = rest[l:]
		return p
	}
	return Envelope{Meta: part(n[0]), Embedding: part(n[1]), Snapshot: part(n[2])}, nil
}
