package events

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// TestAlertsHistory: alerts are watch-list faces, listed plates and alarms (never a resident's
// or the access list's match), newest first; open ones are those nobody acknowledged, and an
// acknowledged one says who and when; pages follow the cursor.
func TestAlertsHistory(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var recs []*event.Event
	add := func(n int, kind, list, plate string) {
		r := rec(base.Add(time.Duration(n)*time.Second), 900+n, "cam001", kind)
		r.Match = nil
		if list != "" {
			r.Match = &event.Match{PersonID: "p" + list, Name: "P " + list, List: list}
		}
		if plate != "" {
			r.Plate = &event.PlateRead{Text: plate, Color: "blue", Valid: true}
		}
		recs = append(recs, r)
	}
	add(1, "face", "watchlist", "")
	add(2, "face", "residents", "")
	add(3, "face", "access", "")
	add(4, "plate", "blacklist", "粤B99999")
	add(5, "plate", "", "粤B11111")
	add(6, "face", "", "")
	alarm := rec(base.Add(7*time.Second), 907, "cam002", event.KindAlarm)
	alarm.Alarm = &event.Alarm{Type: "camera_offline"}
	recs = append(recs, alarm)
	add(8, "face", "watchlist", "")
	if _, err := s.Insert(ctx, recs, func(*event.Event) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO alert_acks (event_id, camera, acked_by, note) VALUES ($1, 'cam001', 'police post 1', 'seen')`, recs[0].ID); err != nil {
		t.Fatal(err)
	}
	f := AlertFilter{From: base, To: base.Add(time.Minute)}
	ids := func(as []Alert) (out []string) {
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	f.State = "all"
	all, _, err := s.Alerts(ctx, f)
	want := []string{recs[7].ID, alarm.ID, recs[3].ID, recs[0].ID}
	if err != nil || len(all) != len(want) {
		t.Fatalf("all alerts: %v %v, want %v", ids(all), err, want)
	}
	for i := range want {
		if all[i].ID != want[i] {
			t.Fatalf("all alerts: %v, want %v (newest first)", ids(all), want)
		}
	}
	f.State = "open"
	open, _, err := s.Alerts(ctx, f)
	if err != nil || len(open) != 3 || open[2].ID != recs[3].ID {
		t.Fatalf("open alerts: %v %v", ids(open), err)
	}
	f.State = "acknowledged"
	acked, _, err := s.Alerts(ctx, f)
	if err != nil || len(acked) != 1 || acked[0].ID != recs[0].ID || acked[0].AckedBy != "police post 1" || acked[0].AckedAt == nil || acked[0].AckNote != "seen" {
		t.Fatalf("acknowledged alerts: %+v %v", acked, err)
	}
	f.State, f.Limit = "all", 3
	page1, next, err := s.Alerts(ctx, f)
	if err != nil || len(page1) != 3 || next == "" {
		t.Fatalf("page 1: %v %q %v", ids(page1), next, err)
	}
	f.Cursor = next
	page2, next, err := s.Alerts(ctx, f)
	if err != nil || len(page2) != 1 || page2[0].ID != recs[0].ID || next != "" {
		t.Fatalf("page 2: %v %q %v", ids(page2), next, err)
	}
	f.State = "later"
	if _, _, err := s.Alerts(ctx, f); err == nil {
		t.Fatal("state later accepted")
	}
}
