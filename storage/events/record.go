package events

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
)

// Record is an event as it travels on the bus (an envelope written by the pipeline) and as the
// store keeps it. The store reads the wire format itself so it stays free of cgo.
type Record struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"`
	Kind   string    `json:"kind"`
	Track  int64     `json:"track"`
	Time   time.Time `json:"time"`
	First  time.Time `json:"first"`
	// Arrival is when the access unit of the shot reached vigil (not stored; it times door
	// decisions from the camera).
	Arrival time.Time `json:"arrival,omitzero"`
	Frames  int       `json:"frames"`
	Box     *struct {
		X, Y, W, H float32
	} `json:"box,omitempty"`
	Quality     float32    `json:"quality"`
	Liveness    float32    `json:"liveness,omitempty"`
	Embedding   []float32  `json:"embedding,omitempty"`    // a JSON array (accepted too)
	EmbeddingLE []byte     `json:"embedding_le,omitempty"` // 128 little-endian float32, as the pipeline sends
	Plate       *PlateRead `json:"plate,omitempty"`
	Match       *Match     `json:"match,omitempty"`
	Snapshot    []byte     `json:"snapshot,omitempty"`
}

// PlateRead is a plate event's reading.
type PlateRead struct {
	Text  string          `json:"text"`
	Color string          `json:"color"`
	Chars json.RawMessage `json:"chars,omitempty"`
	Valid bool            `json:"valid"`
	Votes int             `json:"votes"`
}

// Match is a gallery hit.
type Match struct {
	PersonID string  `json:"person_id,omitempty"`
	Name     string  `json:"name,omitempty"`
	Plate    string  `json:"plate,omitempty"`
	List     string  `json:"list"`
	Distance float32 `json:"distance,omitempty"`
}

// ErrBadRecord means a bus message is not a storable event; it is acknowledged and counted,
// never retried forever.
var ErrBadRecord = errors.New("events: malformed event")

// Decode parses and checks one bus message: an envelope (JSON metadata, raw embedding, raw
// snapshot) or a plain JSON event.
func Decode(data []byte) (*Record, error) {
	env, err := bus.Unpack(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	var r Record
	if err := json.Unmarshal(env.Meta, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if env.Embedding != nil {
		r.EmbeddingLE = env.Embedding
	}
	if env.Snapshot != nil {
		r.Snapshot = env.Snapshot
	}
	switch {
	case r.ID == "" || len(r.ID) > 64:
		return nil, fmt.Errorf("%w: id %q", ErrBadRecord, r.ID)
	case r.Camera == "" || r.Kind == "":
		return nil, fmt.Errorf("%w: %s has no camera or kind", ErrBadRecord, r.ID)
	case r.Time.IsZero():
		return nil, fmt.Errorf("%w: %s has no time", ErrBadRecord, r.ID)
	case r.Embedding != nil && len(r.Embedding) != 128:
		return nil, fmt.Errorf("%w: %s embedding has %d values", ErrBadRecord, r.ID, len(r.Embedding))
	case r.EmbeddingLE != nil && len(r.EmbeddingLE) != 512:
		return nil, fmt.Errorf("%w: %s embedding has %d bytes", ErrBadRecord, r.ID, len(r.EmbeddingLE))
	}
	if r.EmbeddingLE == nil && r.Embedding != nil {
		r.EmbeddingLE = embeddingBytes(r.Embedding)
	}
	r.Embedding = nil
	if r.First.IsZero() {
		r.First = r.Time
	}
	return &r, nil
}

// embeddingBytes packs 128 float32 little-endian.
func embeddingBytes(e []float32) []byte {
	b := make([]byte, 4*len(e))
	for i, v := range e {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// EmbeddingFromBytes unpacks what embeddingBytes packed.
func EmbeddingFromBytes(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	decodeEmbedding(b, out)
	return out
}

func decodeEmbedding(b []byte, out []float32) {
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

// TimeOfID recovers the millisecond an event id was made at (pipeline.NewID puts it in the id's
// first 6 bytes), so a lookup by id reads one partition.
func TimeOfID(id string) (time.Time, bool) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) < 6 {
		return time.Time{}, false
	}
	var ms uint64
	for _, c := range b[:6] {
		ms = ms<<8 | uint64(c)
	}
	return time.UnixMilli(int64(ms)), true
}

// Encode is a record's bus form, as the pipeline publishes it (tools and tests use it).
func (r *Record) Encode() []byte {
	meta := *r
	meta.EmbeddingLE, meta.Snapshot, meta.Embedding = nil, nil, nil
	js, _ := json.Marshal(&meta)
	emb := r.EmbeddingLE
	if emb == nil && len(r.Embedding) > 0 {
		emb = embeddingBytes(r.Embedding)
	}
	return bus.Pack(js, emb, r.Snapshot)
}
