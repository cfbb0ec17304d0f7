package api

import (
	"context"
	"net/http"
	"time"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/storage/events"
)

// statsStore is what the charts need from the event store.
type statsStore interface {
	Stats(ctx context.Context, from time.Time) ([]events.HourCount, []events.ListCount, error)
}

// stats is GET /v1/stats?hours=24 (≤ 168): events per camera per hour, recognitions per kind
// and list, and every camera's state and uptime since it was added: the console's charts.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st, ok := s.store.(statsStore)
	if !ok {
		s.writeError(w, r, errNoStore)
		return
	}
	hours, err := intParam(r.URL.Query().Get("hours"), 24, 1, 168, "hours")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	from := time.Now().Add(-time.Duration(hours) * time.Hour).Truncate(time.Hour)
	perHour, lists, err := st.Stats(r.Context(), from)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type cam struct {
		ID     string  `json:"id"`
		State  string  `json:"state"`
		Uptime float64 `json:"uptime"`
	}
	cams := []cam{}
	for _, c := range s.cams.Statuses() {
		cams = append(cams, cam{ID: c.ID, State: string(c.State), Uptime: c.Uptime})
	}
	if perHour == nil {
		perHour = []events.HourCount{}
	}
	if lists == nil {
		lists = []events.ListCount{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "hours": perHour, "lists": lists, "cameras": cams})
}

var roleStats = []string{auth.RoleAdmin, auth.RoleInvestigator, auth.RoleOperator}
