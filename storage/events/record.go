package events

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// ErrBadRecord means a bus message is not a storable event; it is acknowledged and counted,
// never retried forever.
var ErrBadRecord = errors.New("events: malformed event")

// Decode reads one bus message (event.Unpack) and checks what the store needs of it beyond a
// well-formed event: a face embedding, when there is one, of a known model and its length. An
// embedding without a model is dlib's (events from before models were named); Model is set.
func Decode(data []byte) (*event.Event, error) {
	e, err := event.Unpack(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if len(e.Embedding) == 0 {
		return e, nil
	}
	if e.Model == "" {
		e.Model = space.DlibV1.Name
	}
	sp, err := space.SpaceNamed(e.Model)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadRecord, e.ID, err)
	}
	if n := len(e.Embedding); n != 4*sp.Dims {
		return nil, fmt.Errorf("%w: %s %s embedding has %d bytes, want %d", ErrBadRecord, e.ID, sp.Name, n, 4*sp.Dims)
	}
	return e, nil
}

// EmbeddingFromBytes unpacks a stored embedding.
func EmbeddingFromBytes(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	event.UnpackVector(b, out)
	return out
}

// TimeOfID recovers the millisecond an event id was made at (event.NewID), so a lookup by id
// reads one partition.
func TimeOfID(id string) (time.Time, bool) { return event.TimeOfID(id) }
