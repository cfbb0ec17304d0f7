package bus

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
)

func TestEmbeddedPublishSubscribeAndDedupe(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Config{StoreDir: t.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan string, 10)
	stop, err := b.Subscribe(event.SubjectPrefix+".face.>", func(subj string, data []byte) { got <- subj + " " + string(data) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.Publish(ctx, event.SubjectPrefix+".face.cam001", "e1", []byte(`{"id":"e1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, event.SubjectPrefix+".face.cam001", "e1", []byte(`{"id":"e1"}`)); err != nil { // a retry
		t.Fatal(err)
	}
	if err := b.Publish(ctx, event.SubjectPrefix+".plate.cam002", "e2", []byte(`{"id":"e2"}`)); err != nil {
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
