package pipeline

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"image"
	"image/jpeg"
	"math"
	"time"

	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// Event kinds.
const (
	KindFace  = "face"
	KindPlate = "plate"
)

// Event is one passage of one person or vehicle past one camera.
type Event struct {
	ID      string          `json:"id"`
	Camera  string          `json:"camera"`
	Kind    string          `json:"kind"`
	Track   uint64          `json:"track"`
	Time    time.Time       `json:"time"`    // when the shot in the event was taken
	First   time.Time       `json:"first"`   // first detection of the passage
	Arrival time.Time       `json:"arrival"` // when the access unit of the shot arrived
	Frames  int             `json:"frames"`  // detections in the passage so far
	Box     recognizers.Box `json:"box"`
	Quality float32         `json:"quality"`
	// Faces. The embedding travels as 512 bytes of little-endian float32 (base64 in JSON): a
	// tenth of the size of a JSON number array and decoded many times faster by the store.
	Liveness    float32                `json:"liveness,omitempty"`
	Embedding   *recognizers.Embedding `json:"-"`
	EmbeddingLE []byte                 `json:"embedding_le,omitempty"`
	// Plates.
	Plate *PlateRead `json:"plate,omitempty"`
	Match *Match     `json:"match,omitempty"`
	// Snapshot is the best shot as JPEG, encoded once and reused by storage.
	Snapshot []byte `json:"snapshot,omitempty"`
}

// PlateRead is a plate event's reading.
type PlateRead struct {
	Text  string         `json:"text"`
	Color string         `json:"color"`
	Chars []dnn.CharConf `json:"chars"`
	Valid bool           `json:"valid"`
	Votes int            `json:"votes"` // reads of this text in the passage
}

// NewID returns a time-ordered unique id: 12 hex digits of milliseconds, then 10 random hex.
func NewID(t time.Time) string {
	var b [11]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// Crop is a piece of a frame in BGR, in Go memory so it can cross goroutines.
type Crop struct {
	W, H int
	BGR  []byte
}

// JPEG encodes a crop (quality 85).
func (c *Crop) JPEG() []byte {
	if c == nil || c.W == 0 {
		return nil
	}
	img := image.NewRGBA(image.Rect(0, 0, c.W, c.H))
	for i, j := 0, 0; i < len(c.BGR); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = c.BGR[i+2], c.BGR[i+1], c.BGR[i], 255
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 85})
	return b.Bytes()
}

// PackEmbedding is the wire form of an embedding: 128 little-endian float32.
func PackEmbedding(e *recognizers.Embedding) []byte {
	b := make([]byte, 4*len(e))
	for i, v := range e {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}
