package api

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/storage/events"
)

// TestWatchRolesDoNotSeeWhom: listing events is no way around tracking's guard. A patrol or
// operator token sees that a resident was recognised, not who; patrol sees no plate read; a
// watch-list hit keeps its name for every watch role; investigators see everything.
func TestWatchRolesDoNotSeeWhom(t *testing.T) {
	str := func(s string) *string { return &s }
	d := float32(0.3)
	stored := func() []events.Event {
		return []events.Event{
			{Kind: event.KindFace, PersonID: str("alice"), PersonName: str("Alice"), List: str(access.AccessList), Distance: &d},
			{Kind: event.KindFace, PersonID: str("wanted-1"), PersonName: str("Wanted"), List: str("watch")},
			{Kind: event.KindPlate, Plate: str("粤B12345"), Attrs: []byte(`{"plate_chars":[]}`)},
			{Kind: event.KindPlate, Plate: str("粤B99999"), List: str("stolen")},
			{Kind: event.KindFace, PersonID: str("bob"), List: str("residents")},
		}
	}
	live := []event.Event{
		{Kind: event.KindFace, Match: &event.Match{PersonID: "alice", Name: "Alice", List: access.AccessList, Distance: 0.3}},
		{Kind: event.KindFace, Match: &event.Match{PersonID: "wanted-1", List: "watch"}},
		{Kind: event.KindPlate, Plate: &event.PlateRead{Text: "粤B12345", Color: "blue"}},
		{Kind: event.KindPlate, Plate: &event.PlateRead{Text: "粤B99999"}, Match: &event.Match{Plate: "粤B99999", List: "stolen"}},
	}
	for _, c := range []struct {
		role                            string
		resident, wanted, plate, listed bool
	}{
		{auth.RoleInvestigator, true, true, true, true},
		{auth.RoleAdmin, true, true, true, true},
		{auth.RoleOperator, false, true, true, true},
		{auth.RolePatrol, false, true, false, true},
	} {
		r := httptest.NewRequest("GET", "/v1/events", nil)
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, &auth.Principal{Role: c.role}))
		l := levelOf(r)
		es := stored()
		for i := range es {
			redactStored(&es[i], l)
		}
		got := [4]bool{es[0].PersonID != nil && es[0].PersonName != nil && es[0].Distance != nil, es[1].PersonID != nil,
			es[2].Plate != nil && es[2].Attrs != nil, es[3].Plate != nil}
		if (es[4].PersonID != nil) != c.resident {
			t.Errorf("%s: a hand-enrolled resident's identity shown: %v", c.role, es[4].PersonID != nil)
		}
		if got != [4]bool{c.resident, c.wanted, c.plate, c.listed} {
			t.Errorf("%s, stored: sees resident/wanted/plate/listed %v, want %v", c.role, got, []bool{c.resident, c.wanted, c.plate, c.listed})
		}
		var lv [4]event.Event
		for i := range live {
			lv[i] = redactLive(live[i], l)
		}
		got = [4]bool{lv[0].Match.PersonID != "" && lv[0].Match.Name != "", lv[1].Match.PersonID != "", lv[2].Plate.Text != "", lv[3].Plate.Text != ""}
		if got != [4]bool{c.resident, c.wanted, c.plate, c.listed} {
			t.Errorf("%s, live: sees resident/wanted/plate/listed %v, want %v", c.role, got, []bool{c.resident, c.wanted, c.plate, c.listed})
		}
		if lv[0].Match.List != access.AccessList {
			t.Errorf("%s: the resident match lost its list", c.role)
		}
	}
	if live[0].Match.PersonID != "alice" || live[2].Plate.Text == "" {
		t.Fatal("redactLive changed the shared event")
	}
}

// TestLateEventOfErasedPerson: an event matched before a person's erasure and heard after it
// names nobody and leaves no best shot in the cache.
func TestLateEventOfErasedPerson(t *testing.T) {
	s := &Server{snaps: newSnapshots(10)}
	s.snaps.forget("alice")
	now := time.Now()
	e := &event.Event{ID: event.NewID(now), Camera: "cam001", Kind: event.KindFace, Time: now, First: now,
		Match: &event.Match{PersonID: "alice", Name: "Alice", List: access.AccessList}, Snapshot: []byte("\xff\xd8jpeg")}
	_, views, err := s.liveView(e.Pack())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(views[seeAll]), "alice") || strings.Contains(string(views[seeAll]), "snapshot_url") {
		t.Fatalf("a late event of an erased person: %s", views[seeAll])
	}
	if _, ok := s.snaps.get(e.ID); ok {
		t.Fatal("its best shot was cached")
	}
	e.ID, e.Match.PersonID = event.NewID(now), "bob"
	if _, views, _ = s.liveView(e.Pack()); !strings.Contains(string(views[seeAll]), "bob") {
		t.Fatalf("another person's event lost its match: %s", views[seeAll])
	}
}
