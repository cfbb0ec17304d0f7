package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/storage/strangers"
)

// roleStrangers: who follows strangers (search roles); who changes them (investigators).
var (
	roleStrangers    = []string{auth.RoleAdmin, auth.RoleInvestigator, auth.RoleOperator}
	roleStrangerEdit = []string{auth.RoleAdmin, auth.RoleInvestigator}
)

// routesStrangers: repeat strangers, anonymous identities of faces that matched no one.
//
//	GET  /v1/strangers                  ?days=7&min_faces=2                     search roles
//	GET  /v1/strangers/{id}             the stranger and its appearances (reason) search roles
//	POST /v1/strangers/{id}/promote     {"person", "name", "list", "reason"}    investigator, admin
//	POST /v1/strangers/{id}/merge       {"into", "reason"}                      investigator, admin
//	POST /v1/strangers/{id}/split       {"event_ids": [...], "reason"}          investigator, admin
func (s *Server) routesStrangers(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/strangers", roleStrangers, s.listStrangers)
	s.handle(mux, "GET /v1/strangers/{id}", roleStrangers, s.getStranger)
	s.handle(mux, "POST /v1/strangers/{id}/promote", roleStrangerEdit, s.changeStranger("stranger.promote"))
	s.handle(mux, "POST /v1/strangers/{id}/merge", roleStrangerEdit, s.changeStranger("stranger.merge"))
	s.handle(mux, "POST /v1/strangers/{id}/split", roleStrangerEdit, s.changeStranger("stranger.split"))
}

func (s *Server) needStrangers(w http.ResponseWriter, r *http.Request) bool {
	if s.strangers == nil {
		s.writeError(w, r, errNoStore)
		return false
	}
	return true
}

func (s *Server) strangersError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, strangers.ErrNotFound):
		s.writeError(w, r, errNotFound)
	case errors.Is(err, strangers.ErrInvalid):
		s.writeError(w, r, badRequest(err.Error()))
	default:
		s.writeError(w, r, err)
	}
}

// listStrangers is GET /v1/strangers: the strangers seen in the last days (default 7, at most
// 90) with at least min_faces faces (default 2), most seen first; audited (strangers.list).
func (s *Server) listStrangers(w http.ResponseWriter, r *http.Request) {
	if !s.needStrangers(w, r) {
		return
	}
	q := r.URL.Query()
	days, minFaces := 7, 2
	var err error
	if v := q.Get("days"); v != "" {
		if days, err = strconv.Atoi(v); err != nil || days < 1 || days > 90 {
			s.writeError(w, r, badRequest("days: 1 to 90"))
			return
		}
	}
	if v := q.Get("min_faces"); v != "" {
		if minFaces, err = strconv.Atoi(v); err != nil || minFaces < 1 {
			s.writeError(w, r, badRequest("min_faces: at least 1"))
			return
		}
	}
	list, err := s.strangers.List(r.Context(), time.Now().Add(-time.Duration(days)*24*time.Hour), minFaces, 200)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n := len(list)
	if _, ok := s.audit(w, r, "strangers.list", q.Get("reason"), map[string]any{"days": days, "min_faces": minFaces}, &n); !ok {
		return
	}
	type out struct {
		strangers.Stranger
		SnapshotURL string `json:"snapshot_url,omitempty"`
	}
	res := make([]out, len(list))
	for i, st := range list {
		res[i] = out{Stranger: st}
		if st.Snapshot != "" {
			res[i].SnapshotURL = "/v1/events/" + st.Snapshot + "/snapshot"
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"strangers": res})
}

// getStranger is GET /v1/strangers/{id}?reason=: the stranger, its cameras and its appearances
// (newest first, each with its best shot); following someone states a reason, audited.
func (s *Server) getStranger(w http.ResponseWriter, r *http.Request) {
	if !s.needStrangers(w, r) {
		return
	}
	reason, err := reasonOf(r.URL.Query().Get("reason"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	st, err := s.strangers.Get(r.Context(), id)
	if err != nil {
		s.strangersError(w, r, err)
		return
	}
	apps, err := s.strangers.Appearances(r.Context(), id, 500)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n := len(apps)
	if _, ok := s.audit(w, r, "strangers.view", reason, map[string]any{"stranger": id}, &n); !ok {
		return
	}
	type app struct {
		strangers.Appearance
		SnapshotURL string `json:"snapshot_url"`
	}
	out := make([]app, len(apps))
	for i, a := range apps {
		out[i] = app{Appearance: a, SnapshotURL: "/v1/events/" + a.EventID + "/snapshot"}
	}
	writeJSON(w, http.StatusOK, map[string]any{"stranger": st, "appearances": out})
}

// changeStranger promotes, merges or splits a stranger: the change and its audit row commit
// together.
func (s *Server) changeStranger(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.needStrangers(w, r) {
			return
		}
		if s.auditor == nil {
			s.writeError(w, r, errNoStore)
			return
		}
		var req struct {
			Person, Name, List, Into, Reason string
			EventIDs                         []string `json:"event_ids"`
		}
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		reason, err := reasonOf(req.Reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		id, who := r.PathValue("id"), actor(r)
		detail := map[string]any{"stranger": id}
		var made string
		var fn func(ctx context.Context, tx pgx.Tx) error
		switch action {
		case "stranger.promote":
			if req.List == "" {
				req.List = "watchlist"
			}
			detail["person"], detail["list"] = req.Person, req.List
			fn = func(ctx context.Context, tx pgx.Tx) error {
				return s.strangers.Promote(ctx, tx, id, req.Person, req.Name, req.List, who.Name)
			}
		case "stranger.merge":
			detail["into"] = req.Into
			fn = func(ctx context.Context, tx pgx.Tx) error { return s.strangers.Merge(ctx, tx, id, req.Into) }
		default:
			detail["event_ids"] = req.EventIDs
			fn = func(ctx context.Context, tx pgx.Tx) (err error) {
				made, err = s.strangers.Split(ctx, tx, id, req.EventIDs)
				return err
			}
		}
		d, _ := json.Marshal(detail)
		if _, err := s.auditor.Change(r.Context(), audit.Entry{Actor: who.Name, Role: who.Role, Action: action, Reason: reason, Detail: d}, nil,
			func(tx pgx.Tx) error { return fn(r.Context(), tx) }); err != nil {
			s.strangersError(w, r, err)
			return
		}
		resp := map[string]any{"stranger": id, "action": action}
		if made != "" {
			resp["new_stranger"] = made
		}
		if action == "stranger.promote" {
			resp["person"] = req.Person
			resp["note"] = "every node's gallery adds the entry within seconds; the stranger's next faces match it"
		}
		writeJSON(w, http.StatusOK, resp)
	}
}
