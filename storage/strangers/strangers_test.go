package strangers

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/events"
)

func randUnit(rng *rand.Rand) []float32 {
	v := make([]float32, space.DefaultSpace.Dims)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	space.Normalize(v)
	return v
}

func jitter(rng *rand.Rand, v []float32, d float64) []float32 {
	out := append([]float32(nil), v...)
	for i := range out {
		out[i] += float32(rng.NormFloat64() * d / 16) // 256 dims: a distance of about d
	}
	space.Normalize(out)
	return out
}

// TestNightRuleAndStableIDs: a stranger seen at night on three nights this week raises the night
// rule once; a resident seen the same nights never (matched faces are not strangers); a stranger
// seen one night does not; a stranger trying a door camera three times in ten minutes raises the
// door rule; after a restart (a new service, nothing in memory) the first stranger's next face
// joins the same id; merge and promote work on the stored faces.
func TestNightRuleAndStableIDs(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	store := events.New(pool)
	rng := rand.New(rand.NewPCG(11, 30))
	x, y, z, resident := randUnit(rng), randUnit(rng), randUnit(rng), randUnit(rng)
	now := time.Now().UTC()
	// Yesterday's midnight: every night below is over (02:10 after the latest), whatever the hour
	// the test runs at.
	day := now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	face := func(t time.Time, camera string, e []float32, person string) *event.Event {
		ev := &event.Event{ID: event.NewID(t), Camera: camera, Kind: event.KindFace,
			Time: t, First: t, Frames: 3, Quality: 0.8, Embedding: event.PackVector(e), Model: space.DefaultSpace.Name}
		if person != "" {
			ev.Match = &event.Match{PersonID: person, Name: person, List: "residents", Distance: 0.3}
		}
		return ev
	}
	var evs []*event.Event
	for _, back := range []int{1, 2, 4} { // three nights: 23:30, and 02:10 the same night for x
		night := day.Add(-time.Duration(back) * 24 * time.Hour).Add(23*time.Hour + 30*time.Minute)
		evs = append(evs, face(night, "cam007", jitter(rng, x, 0.3), ""), face(night.Add(160*time.Minute), "cam008", jitter(rng, x, 0.3), ""))
		evs = append(evs, face(night, "cam007", jitter(rng, resident, 0.3), "wang-wei"))
	}
	evs = append(evs, face(day.Add(-24*time.Hour+23*time.Hour), "cam007", jitter(rng, y, 0.3), ""))
	for i := range 3 {
		evs = append(evs, face(now.Add(-time.Duration(5-i)*time.Minute), "door-cam", jitter(rng, z, 0.3), ""))
	}
	if _, err := store.Insert(ctx, evs, func(*event.Event) string { return "" }); err != nil {
		t.Fatal(err)
	}
	rules := Rules{Loc: time.UTC, Lookback: 8 * 24 * time.Hour, IsDoor: func(c string) bool { return c == "door-cam" }}
	svc := New(pool, space.DefaultSpace, rules)
	got, alarms, err := svc.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != len(evs)-3 {
		t.Fatalf("clustered %d faces, want %d (the resident's are not strangers)", got, len(evs)-3)
	}
	types := map[string]string{}
	for _, a := range alarms {
		types[a.Type] = a.Stranger
	}
	if len(alarms) != 2 || types["stranger_at_night"] == "" || types["stranger_at_door"] == "" {
		t.Fatalf("alarms %+v", alarms)
	}
	list, err := svc.List(ctx, now.Add(-8*24*time.Hour), 1, 100)
	if err != nil || len(list) != 3 {
		t.Fatalf("strangers %+v %v", list, err)
	}
	xid := types["stranger_at_night"]
	var sx Stranger
	for _, s := range list {
		if s.ID == xid {
			sx = s
		}
	}
	if sx.Faces != 6 || !slices.Equal(sx.Cameras, []string{"cam007", "cam008"}) {
		t.Fatalf("the night stranger %+v", sx)
	}
	if _, again, _ := svc.Pass(ctx); len(again) != 0 {
		t.Fatalf("the rules fired again: %+v", again)
	}

	// A restart: nothing in memory; x's next face joins x's id.
	svc2 := New(pool, space.DefaultSpace, rules)
	if _, err := store.Insert(ctx, []*event.Event{face(now.Add(-time.Minute), "cam009", jitter(rng, x, 0.3), "")}, func(*event.Event) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if got, _, err := svc2.Pass(ctx); err != nil || got != 1 {
		t.Fatalf("after restart: %d %v", got, err)
	}
	sx2, err := svc2.Get(ctx, xid)
	if err != nil || sx2.Faces != 7 {
		t.Fatalf("the night stranger after a restart: %+v %v", sx2, err)
	}

	// Merge y into x; promote x.
	yid := ""
	for _, s := range list {
		if s.ID != xid && s.ID != types["stranger_at_door"] {
			yid = s.ID
		}
	}
	tx, _ := pool.Begin(ctx)
	if err := svc2.Merge(ctx, tx, yid, xid); err != nil {
		t.Fatal(err)
	}
	if err := svc2.Promote(ctx, tx, xid, "night-visitor", "Night visitor", "watchlist", "detective 3"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	sx3, _ := svc2.Get(ctx, xid)
	if sx3.Faces != 8 || sx3.PromotedTo != "night-visitor" {
		t.Fatalf("after merge and promote: %+v", sx3)
	}
	// Split two of x's appearances off into a new stranger.
	apps, err := svc2.Appearances(ctx, xid, 100)
	if err != nil || len(apps) != 8 {
		t.Fatalf("appearances %d %v", len(apps), err)
	}
	tx, _ = pool.Begin(ctx)
	if _, err := svc2.Split(ctx, tx, xid, []string{apps[0].EventID, "not-" + apps[1].EventID}); err == nil {
		t.Fatal("split with a foreign event")
	}
	tx.Rollback(ctx)
	tx, _ = pool.Begin(ctx)
	nid, err := svc2.Split(ctx, tx, xid, []string{apps[0].EventID, apps[1].EventID})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if sn, _ := svc2.Get(ctx, nid); sn.Faces != 2 {
		t.Fatalf("the split-off stranger: %+v", sn)
	}
	if sx4, _ := svc2.Get(ctx, xid); sx4.Faces != 6 {
		t.Fatalf("after the split: %+v", sx4)
	}
	es, err := Entries(ctx, pool, 0)
	if err != nil || len(es) != 1 || es[0].ID != "night-visitor" || len(es[0].Embeddings) != 5 {
		t.Fatalf("entries %+v %v", es, err)
	}
}
