package bus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestEmbeddedPublishSubscribeAndDedupe(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Config{StoreDir: t.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan string, 10)
	stop, err := b.Subscribe(EventsSubject+".face.>", func(subj string, data []byte) { got <- subj + " " + string(data) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.Publish(ctx, EventsSubject+".face.cam001", "e1", []byte(`{"id":"e1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, EventsSubject+".face.cam001", "e1", []byte(`{"id":"e1"}`)); err != nil { // a retry
		t.Fatal(err)
	}
	if err := b.Publish(ctx, EventsSubject+".plate.cam002", "e2", []byte(`{"id":"e2"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != `vigil.events.face.cam001 {"id":"e1"}` {
			t.Fatalf("got %q", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no message")
	}
	st, err := b.JetStream().Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2 (the retry de-duplicated)", info.State.Msgs)
	}
}

func TestEnvelopeRoundTripAndJSON(t *testing.T) {
	meta, emb, snap := []byte(`{"id":"a"}`), make([]byte, 512), []byte{0xff, 0xd8, 1, 2}
	emb[7] = 9
	env, err := Unpack(Pack(meta, emb, snap))
	if err != nil {
		t.Fatal(err)
	}
	if string(env.Meta) != string(meta) || len(env.Embedding) != 512 || env.Embedding[7] != 9 || string(env.Snapshot) != string(snap) {
		t.Fatalf("round trip: %+v", env)
	}
	env, err = Unpack(Pack(meta, nil, nil))
	if err != nil || env.Embedding != nil || env.Snapshot != nil {
		t.Fatalf("empty parts: %+v %v", env, err)
	}
	env, err = Unpack([]byte(`{"id":"b"}`))
	if err != nil || string(env.Meta) != `{"id":"b"}` {
		t.Fatalf("plain JSON: %+v %v", env, err)
	}
	full := Pack(meta, emb, snap)
	for _, bad := range [][]byte{nil, {0x02, 0, 0, 0}, {0x01}, {0x01, 0xff}, full[:len(full)-1], append(full, 0), {0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0}} {
		if _, err := Unpack(bad); !errors.Is(err, ErrEnvelope) {
			t.Errorf("Unpack(% x) = %v, want ErrEnvelope", bad, err)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(Pack([]byte(`{"id":"a"}`), make([]byte, 512), []byte{1, 2, 3}))
	f.Add([]byte(`{"id":"b"}`))
	f.Add([]byte{0x01, 0x05, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Unpack(data)
		if err != nil {
			return
		}
		if data[0] == '{' {
			return
		}
		if again, err := Unpack(Pack(env.Meta, env.Embedding, env.Snapshot)); err != nil || len(again.Meta)+len(again.Embedding)+len(again.Snapshot) != len(env.Meta)+len(env.Embedding)+len(env.Snapshot) {
			t.Fatalf("repack of % x: %v", data, err)
		}
	})
}
