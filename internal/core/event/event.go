// Package event is the one definition of a recognition event as it crosses the bus: the struct,
// its subject, and its wire form (Pack and Unpack). The pipeline publishes it; the event store,
// the search indexes, auto-unlock, the recorder's event marks and the API's live stream read it.
// It is pure Go, so every consumer stays free of cgo.
package event

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"time"
)

// Kinds of event.
const (
	KindFace  = "face"
	KindPlate = "plate"
	KindAlarm = "alarm" // a silent alarm (a duress code at a door), a sensor's alarm
)

// SubjectPrefix is the bus subject prefix of events: vigil.events.<kind>.<camera>.
const SubjectPrefix = "vigil.events"

// Event is one passage of one person or vehicle past one camera.
type Event struct {
	ID     string `json:"id"`
	Camera string `json:"camera"`
	Kind   string `json:"kind"`
	Track  uint64 `json:"track"`
	// Time is when the shot in the event was taken; First the passage's first detection.
	Time  time.Time `json:"time"`
	First time.Time `json:"first"`
	// Arrival is when the access unit of the shot reached vigil (not stored; it times door
	// decisions from the camera).
	Arrival time.Time `json:"arrival,omitzero"`
	Frames  int       `json:"frames"` // detections in the passage so far
	Box     Box       `json:"box"`
	Quality float32   `json:"quality"`
	// Faces. Liveness is assessed only on cameras linked to a door (0: not assessed).
	Liveness float32 `json:"liveness,omitempty"`
	// Embedding is the face descriptor as little-endian float32 (Vector unpacks it). On the bus
	// it is a raw part of the envelope, not JSON: a tenth of the size of a number array and
	// decoded many times faster. A plain-JSON event may carry it base64-encoded.
	Embedding []byte `json:"embedding_le,omitempty"`
	// Model is the embedding space Embedding was made in (recognizers.Space's name): vectors
	// of two spaces are never compared. "" on events from before spaces were named (dlib-v1).
	Model string `json:"model,omitempty"`
	// Lease is the epoch of the publishing node's hold on the camera (0 outside a cluster):
	// the event store refuses an event whose epoch the camera's fence has passed.
	Lease uint64 `json:"lease,omitempty"`
	// Plates.
	Plate *PlateRead `json:"plate,omitempty"`
	Match *Match     `json:"match,omitempty"`
	// Alarms.
	Alarm *Alarm `json:"alarm,omitempty"`
	// Snapshot is the best shot as JPEG, encoded once and reused by storage (a raw envelope part).
	Snapshot []byte `json:"snapshot,omitempty"`
}

// Box is an axis-aligned rectangle in picture pixels.
type Box struct {
	X float32 `json:"x"`
	Y float32 `json:"y"`
	W float32 `json:"w"`
	H float32 `json:"h"`
}

// Empty reports whether the box has no area (an event without a position).
func (b Box) Empty() bool { return b.W <= 0 || b.H <= 0 }

// Overlap is the intersection over union of two boxes (0 when they do not meet).
func (b Box) Overlap(o Box) float32 {
	x1, y1 := max(b.X, o.X), max(b.Y, o.Y)
	x2, y2 := min(b.X+b.W, o.X+o.W), min(b.Y+b.H, o.Y+o.H)
	if x2 <= x1 || y2 <= y1 {
		return 0
	}
	inter := (x2 - x1) * (y2 - y1)
	return inter / (b.W*b.H + o.W*o.H - inter)
}

// CharConf is one read plate character with the recogniser's confidence.
type CharConf struct {
	Char string  `json:"char"`
	Conf float32 `json:"conf"`
}

// PlateRead is a plate event's reading.
type PlateRead struct {
	Text  string     `json:"text"`
	Color string     `json:"color"`
	Chars []CharConf `json:"chars,omitempty"`
	Valid bool       `json:"valid"`
	Votes int        `json:"votes"` // reads of this text in the passage
}

// Match is a gallery hit.
type Match struct {
	PersonID string  `json:"person_id,omitempty"`
	Name     string  `json:"name,omitempty"`
	Plate    string  `json:"plate,omitempty"`
	List     string  `json:"list"`
	Distance float32 `json:"distance,omitempty"` // faces: embedding distance
	// Margin is how much farther the runner-up person was (faces).
	Margin float32 `json:"margin,omitempty"`
	// Votes is how many detections of the passage matched this person (faces): a door opens only
	// when several agree.
	Votes int `json:"votes,omitempty"`
}

// Alarm is what raised an alarm event.
type Alarm struct {
	Type     string `json:"type"`             // duress, overstay, camera_offline, fire, panic, sensor_offline…
	Door     string `json:"door,omitempty"`   // where
	PersonID string `json:"person,omitempty"` // whose code, whose car
	Plate    string `json:"plate,omitempty"`  // a car's (overstay)
	Area     string `json:"area,omitempty"`   // a car park (overstay)
	// Sensors: which one, its name, the cameras linked to it (opened live on the console) and
	// what it sent with the alarm.
	Sensor string `json:"sensor,omitempty"`
	// Strangers: which anonymous identity a stranger rule fired for.
	Stranger string          `json:"stranger,omitempty"`
	Name     string          `json:"name,omitempty"`
	Cameras  []string        `json:"cameras,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
}

// Subject is the bus subject of an event; camera ids are made subject-safe.
func Subject(kind, camera string) string {
	safe := strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\n', '\r':
			return '_'
		}
		return r
	}, camera)
	return SubjectPrefix + "." + kind + "." + safe
}

// Subject is this event's bus subject.
func (e *Event) Subject() string { return Subject(e.Kind, e.Camera) }

// NewID returns a time-ordered unique id: 12 hex digits of milliseconds, then 10 random hex.
func NewID(t time.Time) string {
	var b [11]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// TimeOfID recovers the millisecond an id was made at (NewID puts it in the id's first 6 bytes),
// so a lookup by id reads one partition.
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

// PackVector is the wire form of an embedding: little-endian float32.
func PackVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// UnpackVector reads what PackVector wrote into out (len(b)/4 values).
func UnpackVector(b []byte, out []float32) {
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

// Vector is the event's embedding as float32 values (nil when it has none).
func (e *Event) Vector() []float32 {
	if len(e.Embedding) == 0 {
		return nil
	}
	out := make([]float32, len(e.Embedding)/4)
	UnpackVector(e.Embedding, out)
	return out
}
