package events

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

func newStore(t testing.TB) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool := testenv.Pool(t)
	return New(pool), pool
}

// makeID mirrors pipeline.NewID: milliseconds in the first 6 bytes.
func makeID(t time.Time, n int) string {
	ms := uint64(t.UnixMilli())
	return fmt.Sprintf("%012x%010x", ms, n)
}

func rec(t time.Time, n int, camera, kind string) *event.Event {
	r := &event.Event{ID: makeID(t, n), Camera: camera, Kind: kind, Track: uint64(n), Time: t, First: t.Add(-time.Second), Frames: 3, Quality: 0.8}
	switch kind {
	case "face":
		v := make([]float32, space.DefaultSpace.Dims)
		v[0] = float32(n)
		r.Embedding, r.Model = event.PackVector(v), space.DefaultSpace.Name
		if n%2 == 0 {
			r.Match = &event.Match{PersonID: "alice", Name: "Alice", List: "residents", Distance: 0.3}
		}
	case "plate":
		r.Plate = &event.PlateRead{Text: "粤B12345", Color: "blue", Valid: true, Votes: 2}
	}
	return r
}

func TestInsertQueryGetAndRetention(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 28, 23, 59, 0, 0, time.UTC) // spans two days
	var recs []*event.Event
	for i := 0; i < 120; i++ {
		kind := []string{"face", "plate"}[i%2]
		recs = append(recs, rec(base.Add(time.Duration(i)*time.Second), i, fmt.Sprintf("cam%03d", i%3+1), kind))
	}
	n, err := s.Insert(ctx, recs, func(r *event.Event) string { return SnapshotKey(r) })
	if err != nil || n != 120 {
		t.Fatalf("insert: %d %v", n, err)
	}
	// Redelivery of part of the batch, plus a duplicate inside one batch: nothing doubles.
	n, err = s.Insert(ctx, append(recs[:50:50], recs[10]), func(*event.Event) string { return "" })
	if err != nil || n != 0 {
		t.Fatalf("re-insert stored %d: %v", n, err)
	}
	var events, faces int
	pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM faces)`).Scan(&events, &faces)
	if events != 120 || faces != 60 {
		t.Fatalf("%d events, %d faces", events, faces)
	}
	all := Filter{From: base.Add(-time.Hour), To: base.Add(time.Hour)}
	f := all
	f.Camera, f.Kind = "cam001", "face"
	got, _, err := s.Query(ctx, f)
	if err != nil || len(got) != 20 {
		t.Fatalf("camera+kind: %d %v", len(got), err)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].Time.Before(got[i-1].Time) {
			t.Fatal("not newest first")
		}
	}
	f = all
	f.Person = "alice"
	if got, _, _ := s.Query(ctx, f); len(got) != 60 || *got[0].PersonName != "Alice" {
		t.Fatalf("person: %d", len(got))
	}
	f = all
	f.Plate = "粤B12345"
	if got, _, _ := s.Query(ctx, f); len(got) != 60 || *got[0].PlateColor != "blue" {
		t.Fatalf("plate: %d", len(got))
	}
	// Pages of 25 cover everything exactly once.
	f = all
	f.Limit = 25
	seen := map[string]bool{}
	pages := 0
	for {
		page, next, err := s.Query(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range page {
			if seen[e.ID] {
				t.Fatalf("%s on two pages", e.ID)
			}
			seen[e.ID] = true
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(seen) != 120 || pages != 5 {
		t.Fatalf("%d events over %d pages", len(seen), pages)
	}
	f.Cursor = "garbage!"
	if _, _, err := s.Query(ctx, f); err != ErrBadCursor {
		t.Fatalf("bad cursor: %v", err)
	}
	e, err := s.Get(ctx, recs[7].ID)
	if err != nil || e.Camera != recs[7].Camera || e.Snapshot == nil || *e.Snapshot != SnapshotKey(recs[7]) {
		t.Fatalf("get: %+v %v", e, err)
	}
	if _, err := s.Get(ctx, makeID(base, 999)); err != ErrNotFound {
		t.Fatalf("missing id: %v", err)
	}
	// Retention drops the first day's partitions whole.
	dropped, err := s.DropBefore(ctx, base.Add(2*time.Minute))
	if err != nil || len(dropped) != 2 {
		t.Fatalf("dropped %v: %v", dropped, err)
	}
	pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events)
	if events != 120-60 {
		t.Fatalf("%d events after retention", events)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, in := range []string{`not json`, `{}`, `{"id":"x","camera":"c","kind":"face"}`, `{"id":"x","camera":"c","kind":"face","time":"2026-01-01T00:00:00Z","embedding":[1,2]}`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	meta := []byte(`{"id":"x","camera":"c","kind":"face","time":"2026-01-01T00:00:00Z"}`)
	short := &event.Event{ID: "x", Camera: "c", Kind: "face", Time: time.Now(), Embedding: make([]byte, 100)}
	for _, in := range [][]byte{short.Pack(), {0x01, 0x09, 0, 0, '{'}, {0x07}} {
		if _, err := Decode(in); !errors.Is(err, ErrBadRecord) {
			t.Errorf("% x: %v", in, err)
		}
	}
	emb := make([]byte, 512)
	emb[3] = 0x3f
	in, err := event.Unpack(meta)
	if err != nil {
		t.Fatal(err)
	}
	in.Embedding, in.Snapshot = emb, []byte{0xff, 0xd8, 0xff}
	r, err := Decode(in.Pack())
	if err != nil || len(r.Embedding) != 512 || r.Embedding[3] != 0x3f || len(r.Snapshot) != 3 || !r.First.Equal(r.Time) {
		t.Fatalf("envelope: %+v %v", r, err)
	}
	id := makeID(time.UnixMilli(1764374400123), 5)
	if ts, ok := TimeOfID(id); !ok || ts.UnixMilli() != 1764374400123 {
		t.Fatalf("time of id %s: %v", id, ts)
	}
}

// TestScanFacesOfTheDefaultModel: the face index's rebuild reads back the default model's
// 256-value embeddings (it once skipped every one that was not 128 values long), day by day.
func TestScanFacesOfTheDefaultModel(t *testing.T) {
	s, _ := newStore(t)
	s.UseFaceSpace(space.DefaultSpace)
	ctx := context.Background()
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var recs []*event.Event
	for i := range 6 {
		recs = append(recs, rec(day.AddDate(0, 0, i/3).Add(time.Duration(i)*time.Minute), i, "cam001", "face"))
	}
	if _, err := s.Insert(ctx, recs, func(*event.Event) string { return "" }); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.ScanFacesBetween(ctx, day.Truncate(24*time.Hour), day.Truncate(24*time.Hour).AddDate(0, 0, 1), func(id string, _ time.Time, _ string, emb []float32) error {
		n++
		if len(emb) != space.DefaultSpace.Dims {
			t.Fatalf("%s: %d values", id, len(emb))
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("the first day: %d embeddings, %v", n, err)
	}
	if days, err := s.FaceDays(ctx, day.AddDate(0, 0, -1)); err != nil || len(days) != 2 {
		t.Fatalf("face days: %v %v", days, err)
	}
}
