package dispatch

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestDispatchNearestAndAnswers: "nearest" picks on-duty officers by their last position, off
// duty and long-silent ones are never picked; only the dispatched officer may answer; each
// officer's stream carries only their own dispatches while the post's carries everything; every
// step is in the audit chain.
func TestDispatchNearestAndAnswers(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	audit := audit.New(pool, filepath.Join(t.TempDir(), "anchor"))
	ps := auth.NewPrincipals(pool, 0)
	officer := func(name string) *auth.Principal {
		p, _, err := ps.Create(ctx, name, auth.RolePatrol)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	near, far, offDuty, silent := officer("near"), officer("far"), officer("off duty"), officer("silent")
	s := New(pool, audit)
	post, cancelPost := s.Subscribe(0)
	defer cancelPost()
	nearSub, cancelNear := s.Subscribe(near.ID)
	defer cancelNear()
	for _, p := range []struct {
		o    *auth.Principal
		x, y float64
		duty bool
	}{{near, 0.30, 0.30, true}, {far, 0.90, 0.90, true}, {offDuty, 0.26, 0.26, false}, {silent, 0.25, 0.25, true}} {
		if err := s.ReportPosition(ctx, p.o, p.x, p.y, p.duty); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE officer_positions SET at = now() - interval '2 hours' WHERE officer_id = $1`, silent.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.ReportPosition(ctx, near, 1.5, 0, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("position off the map: %v", err)
	}
	op := auth.Actor{Name: "police post 1", Role: auth.RoleOperator}
	ds, err := s.Send(ctx, op, Request{EventID: "ev1", Camera: "cam001", Summary: "watchlist at gate", Nearest: 1}, &[2]float64{0.25, 0.25})
	if err != nil || len(ds) != 1 || ds[0].OfficerID != near.ID || ds[0].Officer != "near" || ds[0].Status != "sent" {
		t.Fatalf("nearest: %+v %v", ds, err)
	}
	if _, err := s.Send(ctx, op, Request{EventID: "ev1", Camera: "cam009", Nearest: 1}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nearest to a camera not on the map: %v", err)
	}
	if _, err := s.Send(ctx, op, Request{EventID: "ev2", Camera: "cam001", Officers: []int64{999999}}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("dispatch to nobody: %v", err)
	}
	if _, err := s.SetStatus(ctx, far, ds[0].ID, "on_scene"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("another officer answered: %v", err)
	}
	if _, err := s.SetStatus(ctx, near, ds[0].ID, "asleep"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	d, err := s.SetStatus(ctx, near, ds[0].ID, "on_scene")
	if err != nil || d.Status != "on_scene" {
		t.Fatalf("on scene: %+v %v", d, err)
	}
	if err := s.Ack(ctx, op, "ev1", "cam001", "handled"); err != nil {
		t.Fatal(err)
	}
	acked, err := s.Acked(ctx, []string{"ev1", "ev2"})
	if err != nil || acked["ev1"] != "police post 1" || acked["ev2"] != "" {
		t.Fatalf("acked %v %v", acked, err)
	}
	// Streams: the post saw 4 positions, the dispatch, the answer and the ack; "near" saw its
	// dispatch and its answer only.
	drain := func(sub *Sub) []string {
		var types []string
		for {
			select {
			case u := <-sub.C:
				types = append(types, u.Type)
			case <-time.After(100 * time.Millisecond):
				return types
			}
		}
	}
	if got := drain(post); len(got) != 7 || got[4] != "dispatch" || got[5] != "status" || got[6] != "ack" {
		t.Fatalf("post stream %v", got)
	}
	if got := drain(nearSub); len(got) != 2 || got[0] != "dispatch" || got[1] != "status" {
		t.Fatalf("officer stream %v", got)
	}
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM audit WHERE action IN ('alert.dispatch', 'dispatch.on_scene', 'alert.ack')`).Scan(&n)
	if n != 3 {
		t.Fatalf("%d audit rows", n)
	}
	list, err := s.List(ctx, near.ID, time.Now().Add(-time.Hour))
	if err != nil || len(list) != 1 || list[0].Status != "on_scene" {
		t.Fatalf("list %+v %v", list, err)
	}
}
