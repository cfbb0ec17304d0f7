package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
)

// roleAudit reviews the audit: admins and the privacy officer (auditor).
var roleAudit = []string{auth.RoleAdmin, auth.RoleAuditor}

// auditRoutes adds GET /v1/audit.
func (s *Server) auditRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/audit", roleAudit, s.auditLog)
}

// auditLog is GET /v1/audit?actor=&action=&subject=&from=&to=&before=&limit=: the audit chain's
// entries, newest first (action "search." for every search; subject a person, plate or door).
// Reading the audit is itself audited.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	if s.auditPool == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	q := r.URL.Query()
	f := audit.Filter{Actor: q.Get("actor"), Action: q.Get("action"), Subject: q.Get("subject"), From: time.Now().AddDate(0, 0, -30)}
	var err error
	if v := q.Get("from"); v != "" {
		if f.From, err = parseTime(v); err != nil {
			s.writeError(w, r, badRequest("from: "+err.Error()))
			return
		}
	}
	if v := q.Get("to"); v != "" {
		if f.To, err = parseTime(v); err != nil {
			s.writeError(w, r, badRequest("to: "+err.Error()))
			return
		}
	}
	if !f.To.IsZero() && !f.To.After(f.From) {
		s.writeError(w, r, badRequest("from must be before to"))
		return
	}
	if f.Limit, err = intParam(q.Get("limit"), 100, 1, 1000, "limit"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before < 1 {
			s.writeError(w, r, badRequest("before is an entry's seq"))
			return
		}
	}
	list, err := audit.Query(r.Context(), s.auditPool, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []audit.Entry{}
	}
	n := len(list)
	if _, ok := s.audit(w, r, "audit.read", "", map[string]any{"actor": f.Actor, "action": f.Action, "subject": f.Subject,
		"from": f.From, "to": f.To}, &n); !ok {
		return
	}
	resp := map[string]any{"entries": list, "names": s.auditNames(r, list)}
	if n == f.Limit {
		resp["before"] = list[n-1].Seq
	}
	writeJSON(w, http.StatusOK, resp)
}

// auditNames names the people and doors the entries are about (id → name), so the console shows
// names with the ids on hover. A lookup that fails leaves the ids as they are.
func (s *Server) auditNames(r *http.Request, list []audit.Entry) map[string]string {
	names := map[string]string{}
	var people []string
	for _, e := range list {
		var d struct {
			Person   string            `json:"person"`
			PersonID string            `json:"person_id"`
			People   []string          `json:"person_ids"`
			Names    map[string]string `json:"names"` // as the entry was written (a face search's finds)
		}
		if json.Unmarshal(e.Detail, &d) != nil {
			continue
		}
		for id, name := range d.Names {
			if name != "" {
				names[id] = name
			}
		}
		people = append(append(people, d.Person, d.PersonID), d.People...)
	}
	if s.access == nil {
		return names
	}
	if got, err := s.access.PersonNames(r.Context(), slices.Compact(slices.Sorted(slices.Values(people)))); err == nil {
		maps.Copy(names, got)
	}
	for _, d := range s.access.Doors() {
		if d.Name != "" {
			names[d.ID] = d.Name
		}
	}
	return names
}
