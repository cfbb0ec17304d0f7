package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/dispatch"
)

var (
	rolePost   = []string{auth.RoleAdmin, auth.RoleOperator}                  // ack and dispatch alerts
	roleOnCall = []string{auth.RoleAdmin, auth.RoleOperator, auth.RolePatrol} // dispatch streams
)

// routesDispatch: the police post acknowledges alerts and dispatches them to patrol officers;
// officers answer and report where they are; both sides follow it live.
//
//	GET  /v1/alerts                   ?state=open|acknowledged|all&from&to    watch roles
//	POST /v1/alerts/{event}/ack       {"camera", "note"}                     operator, admin
//	POST /v1/alerts/{event}/dispatch  {"camera", "summary", "officers": [id…] | "nearest": n}
//	GET  /v1/officers                 patrol officers, last positions          operator, admin
//	GET  /v1/dispatches               recent (an officer: their own)           operator, admin, patrol
//	GET  /v1/dispatches/live          SSE of dispatches, answers, positions, acks (an officer: their own dispatches)
//	POST /v1/dispatches/{id}/status   {"status": "acknowledged|on_scene|closed"}  the officer dispatched
//	POST /v1/officers/me/position     {"x", "y", "on_duty"} (site-map fractions)   patrol
func (s *Server) routesDispatch(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/alerts", roleWatch, s.alertHistory)
	s.handle(mux, "POST /v1/alerts/{event}/ack", rolePost, s.alertAck)
	s.handle(mux, "POST /v1/alerts/{event}/dispatch", rolePost, s.alertDispatch)
	s.handle(mux, "GET /v1/officers", rolePost, s.officers)
	s.handle(mux, "GET /v1/dispatches", roleOnCall, s.dispatches)
	s.handle(mux, "GET /v1/dispatches/live", roleOnCall, s.dispatchesLive)
	s.handle(mux, "POST /v1/dispatches/{id}/status", []string{auth.RolePatrol}, s.dispatchStatus)
	s.handle(mux, "POST /v1/officers/me/position", []string{auth.RolePatrol}, s.officerPosition)
	s.handle(mux, "GET /v1/map", roleWatch, s.siteMap)
	s.handle(mux, "GET /v1/map/plan", roleWatch, s.sitePlan)
	s.handle(mux, "PUT /v1/map/plan", roleAdmin, s.putSitePlan)
	s.handle(mux, "PUT /v1/map/items/{kind}/{id}", roleAdmin, s.placeItem)
}

// cameraAt is a camera's place on the site map: placed on the console's map, else configured
// (cameras[].map).
func (s *Server) cameraAt(r *http.Request, camera string) (*[2]float64, error) {
	if s.dispatch != nil {
		if p, err := s.dispatch.CameraAt(r.Context(), camera); p != nil || err != nil {
			return p, err
		}
	}
	if p, ok := s.cameraMap[camera]; ok {
		return &p, nil
	}
	return nil, nil
}

// siteMap is GET /v1/map: the plan (null until one is uploaded) and every placed camera and door;
// cameras placed only in the configuration come with "configured": true.
func (s *Server) siteMap(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	plan, items, err := s.dispatch.Map(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type item struct {
		dispatch.Item
		Configured bool `json:"configured,omitempty"`
	}
	out := []item{}
	placed := map[string]bool{}
	for _, it := range items {
		out = append(out, item{Item: it})
		if it.Kind == "camera" {
			placed[it.ID] = true
		}
	}
	for id, p := range s.cameraMap {
		if !placed[id] {
			out = append(out, item{Item: dispatch.Item{Kind: "camera", ID: id, X: p[0], Y: p[1]}, Configured: true})
		}
	}
	resp := map[string]any{"plan": plan, "items": out}
	if plan != nil {
		resp["plan_url"] = "/v1/map/plan"
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) sitePlan(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	ct, img, err := s.dispatch.PlanImage(r.Context())
	if err != nil {
		s.dispatchError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "private, no-cache")
	_, _ = w.Write(img)
}

// putSitePlan is PUT /v1/map/plan with the image as the body (JPEG or PNG, ≤ 16 MB).
func (s *Server) putSitePlan(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	img, err := io.ReadAll(http.MaxBytesReader(w, r.Body, dispatch.MaxPlanBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("the plan is larger than %d MB", dispatch.MaxPlanBytes>>20)})
			return
		}
		s.writeError(w, r, uploadError(err))
		return
	}
	p, err := s.dispatch.SetPlan(r.Context(), actor(r), img)
	if err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// placeItem is PUT /v1/map/items/{camera|door}/{id} {"x", "y"}.
func (s *Server) placeItem(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	var req struct{ X, Y float64 }
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	it := dispatch.Item{Kind: r.PathValue("kind"), ID: r.PathValue("id"), X: req.X, Y: req.Y}
	if err := s.dispatch.Place(r.Context(), actor(r), it); err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

func (s *Server) needDispatch(w http.ResponseWriter, r *http.Request) bool {
	if s.dispatch == nil {
		s.writeError(w, r, errNoStore)
		return false
	}
	return true
}

func (s *Server) dispatchError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, dispatch.ErrInvalid), errors.Is(err, dispatch.ErrNoOfficer):
		s.writeError(w, r, badRequest(err.Error()))
	case errors.Is(err, dispatch.ErrNotFound):
		s.writeError(w, r, errNotFound)
	case errors.Is(err, dispatch.ErrForbidden):
		s.writeError(w, r, fmt.Errorf("%w: that dispatch was sent to another officer", errForbidden))
	default:
		s.writeError(w, r, err)
	}
}

func (s *Server) alertAck(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	var req struct{ Camera, Note string }
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.dispatch.Ack(r.Context(), actor(r), r.PathValue("event"), req.Camera, req.Note); err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event_id": r.PathValue("event"), "acked_by": actor(r).Name})
}

func (s *Server) alertDispatch(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	var req dispatch.Request
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.EventID = r.PathValue("event")
	at, err := s.cameraAt(r, req.Camera)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ds, err := s.dispatch.Send(r.Context(), actor(r), req, at)
	if err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"dispatches": ds})
}

func (s *Server) officers(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	os, err := s.dispatch.Officers(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if os == nil {
		os = []dispatch.Officer{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"officers": os})
}

// officerScope is the officer whose dispatches a patrol principal may see (0: all, for the post).
func officerScope(r *http.Request) int64 {
	if p := principalOf(r); p != nil && p.Role == auth.RolePatrol {
		return p.ID
	}
	return 0
}

func (s *Server) dispatches(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	ds, err := s.dispatch.List(r.Context(), officerScope(r), time.Now().Add(-24*time.Hour))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ds == nil {
		ds = []dispatch.Dispatch{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dispatches": ds})
}

func (s *Server) dispatchesLive(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	sub, cancel := s.dispatch.Subscribe(officerScope(r))
	defer cancel()
	streamSSE(s, w, r, "vigil dispatches", sub.C, sub.Gone(), func(u dispatch.Update) []byte {
		b, _ := json.Marshal(u)
		return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", u.Type, b)
	})
}

func (s *Server) dispatchStatus(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, badRequest("dispatch id must be a number"))
		return
	}
	var req struct{ Status string }
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := principalOf(r)
	if p == nil {
		s.writeError(w, r, errUnauthorized)
		return
	}
	d, err := s.dispatch.SetStatus(r.Context(), p, id, req.Status)
	if err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) officerPosition(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	var req struct {
		X, Y   float64
		OnDuty *bool `json:"on_duty"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := principalOf(r)
	if p == nil {
		s.writeError(w, r, errUnauthorized)
		return
	}
	onDuty := req.OnDuty == nil || *req.OnDuty
	if err := s.dispatch.ReportPosition(r.Context(), p, req.X, req.Y, onDuty); err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"x": req.X, "y": req.Y, "on_duty": onDuty})
}
