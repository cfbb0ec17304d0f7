package event

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sample() *Event {
	t0 := time.Date(2026, 11, 30, 8, 15, 2, 123_000_000, time.UTC)
	return &Event{
		ID: NewID(t0), Camera: "gate-1", Kind: KindPlate, Track: 42, Time: t0, First: t0.Add(-2 * time.Second),
		Arrival: t0.Add(3 * time.Millisecond), Frames: 7, Box: Box{X: 10, Y: 20, W: 120, H: 40}, Quality: 0.81,
		Liveness: 0.97, Embedding: PackVector([]float32{0.25, -1, 3.5, 0}),
		Plate: &PlateRead{Text: "粤B12345", Color: "blue", Chars: []CharConf{{"粤", 0.9}, {"B", 0.99}}, Valid: true, Votes: 3},
		Match: &Match{Plate: "粤B12345", List: "blacklist", Distance: 0.1, Margin: 0.2}, Snapshot: []byte{0xff, 0xd8, 0xff, 0xe0},
	}
}

// The round trip keeps every field, and the binary parts travel raw, not in the JSON.
func TestPackUnpackRoundTrip(t *testing.T) {
	in := sample()
	data := in.Pack()
	if bytes.Contains(data, []byte(`"snapshot"`)) || bytes.Contains(data, []byte(`"embedding_le"`)) {
		t.Fatalf("binary parts leaked into the JSON metadata: %q", data)
	}
	out, err := Unpack(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
	if got := out.Vector(); !reflect.DeepEqual(got, []float32{0.25, -1, 3.5, 0}) {
		t.Fatalf("vector %v", got)
	}
	if at, ok := TimeOfID(in.ID); !ok || !at.Equal(in.Time) {
		t.Fatalf("TimeOfID(%s) = %v %v, want %v", in.ID, at, ok, in.Time)
	}
	if s := out.Subject(); s != "vigil.events.plate.gate-1" {
		t.Fatalf("subject %q", s)
	}
	if s := Subject(KindFace, "a.b *>c"); s != "vigil.events.face.a_b___c" {
		t.Fatalf("unsafe camera id made %q", s)
	}
}

// Tools and tests may publish plain JSON: base64 parts or a number array for the embedding.
func TestUnpackPlainJSON(t *testing.T) {
	e, err := Unpack([]byte(`{"id":"e1","kind":"face","camera":"c","time":"2026-01-01T00:00:00Z","embedding":[1,2],"snapshot":"/9j/"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Vector(), []float32{1, 2}) || !bytes.Equal(e.Snapshot, []byte{0xff, 0xd8, 0xff}) || !e.First.Equal(e.Time) {
		t.Fatalf("plain JSON event: %+v", e)
	}
}

func TestUnpackRefusesMalformed(t *testing.T) {
	good := sample().Pack()
	noTime := *sample()
	noTime.Time = time.Time{}
	odd := *sample()
	odd.Embedding = []byte{1, 2, 3}
	for name, bad := range map[string][]byte{
		"empty": nil, "version": {0x02, 0, 0, 0}, "no lengths": {0x01}, "bad varint": {0x01, 0xff},
		"short": good[:len(good)-1], "long": append(bytes.Clone(good), 0),
		"huge part":  {0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0},
		"not json":   []byte(`{not json`),
		"no id":      []byte(`{"camera":"c","kind":"face","time":"2026-01-01T00:00:00Z"}`),
		"long id":    []byte(`{"id":"` + string(bytes.Repeat([]byte("x"), 65)) + `","camera":"c","kind":"face","time":"2026-01-01T00:00:00Z"}`),
		"no camera":  []byte(`{"id":"x","kind":"face","time":"2026-01-01T00:00:00Z"}`),
		"no time":    noTime.Pack(),
		"odd vector": odd.Pack(),
	} {
		if _, err := Unpack(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Unpack = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(sample().Pack())
	f.Add([]byte(`{"id":"b","camera":"c","kind":"face","time":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte{0x01, 0x05, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Unpack(data)
		if err != nil {
			return
		}
		again, err := Unpack(e.Pack())
		if err != nil {
			t.Fatalf("repack of % x: %v", data, err)
		}
		if again.ID != e.ID || !bytes.Equal(again.Embedding, e.Embedding) || !bytes.Equal(again.Snapshot, e.Snapshot) {
			t.Fatalf("repack of % x changed the event", data)
		}
	})
}
