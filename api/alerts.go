package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/dispatch"
	"github.com/vigil-oss/vigil/storage/events"
)

// alertEntry is one alert of the history: the event with its links, who acknowledged it and
// when, and whom it was dispatched to with their answers.
type alertEntry struct {
	storedEvent
	AckedBy    string              `json:"acked_by,omitempty"`
	AckedAt    *time.Time          `json:"acked_at,omitempty"`
	AckNote    string              `json:"ack_note,omitempty"`
	Dispatches []dispatch.Dispatch `json:"dispatches,omitempty"`
	FootageURL string              `json:"footage_url"`
}

// alertHistory is GET /v1/alerts?state=open|acknowledged|all&from&to&limit&cursor: alerts newest
// first (watch-list faces, listed plates, alarms), open ones by default, over the last 7 days
// by default; each with who acknowledged it and when, and its dispatches.
func (s *Server) alertHistory(w http.ResponseWriter, r *http.Request) {
	if s.store == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	q := r.URL.Query()
	now := time.Now()
	f := events.AlertFilter{State: q.Get("state"), From: now.Add(-7 * 24 * time.Hour), To: now.Add(time.Minute), Cursor: q.Get("cursor")}
	if f.State == "" {
		f.State = "open"
	}
	if f.State != "open" && f.State != "acknowledged" && f.State != "all" {
		s.writeError(w, r, badRequest("state must be open, acknowledged or all"))
		return
	}
	var err error
	if f.From, f.To, err = queryRange(q, f.From, f.To); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !f.To.After(f.From) || f.To.Sub(f.From) > maxWindow {
		s.writeError(w, r, badRequest("from must be before to, at most 366 days apart"))
		return
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 500 {
			s.writeError(w, r, badRequest("limit must be a number from 1 to 500"))
			return
		}
	}
	list, next, err := s.store.Alerts(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ids := make([]string, len(list))
	for i, a := range list {
		ids[i] = a.ID
	}
	var sent map[string][]dispatch.Dispatch
	if s.dispatch != nil {
		if sent, err = s.dispatch.ForEvents(r.Context(), ids); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	level := levelOf(r)
	out := make([]alertEntry, len(list))
	for i, a := range list {
		redactStored(&a.Event, level)
		out[i] = alertEntry{storedEvent: withLinks(a.Event), AckedBy: a.AckedBy, AckedAt: a.AckedAt, AckNote: a.AckNote,
			Dispatches: sent[a.ID], FootageURL: footageLink(a.Camera, a.Time)}
	}
	resp := map[string]any{"alerts": out, "state": f.State, "from": f.From, "to": f.To}
	if next != "" {
		resp["next"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}
