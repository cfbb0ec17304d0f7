package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
)

// rolePeople run the site's people: admins and the property office's staff.
var rolePeople = []string{auth.RoleAdmin, auth.RoleProperty}

// peopleRoutes adds the staff's read side of access control (every list paginated by id) and the
// changes that are theirs beside admin's: ending a lease, removing a rule, inviting a resident
// to the app.
func (s *Server) peopleRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/people", rolePeople, s.listPeople)
	s.handle(mux, "GET /v1/people/{id}", rolePeople, s.getPerson)
	s.handle(mux, "GET /v1/units", rolePeople, listPage(s, "units", func(r *http.Request, after string, limit int) ([]access.UnitRow, error) {
		return s.access.Units(r.Context(), r.URL.Query().Get("q"), r.URL.Query().Get("building"), after, limit)
	}, func(u access.UnitRow) string { return u.ID }))
	s.handle(mux, "GET /v1/leases", rolePeople, s.listLeases)
	s.handle(mux, "POST /v1/leases/{id}/end", rolePeople, s.endLease)
	s.handle(mux, "GET /v1/rules", rolePeople, listPage(s, "rules", func(r *http.Request, after string, limit int) ([]access.RuleRow, error) {
		var afterID int64
		if after != "" {
			var err error
			if afterID, err = strconv.ParseInt(after, 10, 64); err != nil {
				return nil, badRequest("after is a rule id")
			}
		}
		return s.access.Rules(r.Context(), r.URL.Query().Get("door"), afterID, limit)
	}, func(ru access.RuleRow) string { return strconv.FormatInt(ru.ID, 10) }))
	s.handle(mux, "DELETE /v1/rules/{id}", rolePeople, s.removeRule)
	s.handle(mux, "GET /v1/schedules", rolePeople, listPage(s, "schedules", func(r *http.Request, after string, limit int) ([]access.ScheduleRow, error) {
		return s.access.Schedules(r.Context(), after, limit)
	}, func(sc access.ScheduleRow) string { return sc.ID }))
	s.handle(mux, "GET /v1/groups", rolePeople, listPage(s, "groups", func(r *http.Request, after string, limit int) ([]access.GroupRow, error) {
		return s.access.Groups(r.Context(), after, limit)
	}, func(g access.GroupRow) string { return g.ID }))
	s.handle(mux, "POST /v1/people/{id}/app-invitation", rolePeople, s.appInvitation)
	s.handle(mux, "DELETE /v1/groups/{id}/members/{person}", rolePeople, s.staffDelete(func(r *http.Request) error {
		return s.access.RemoveGroupMember(r.Context(), actor(r), r.PathValue("id"), r.PathValue("person"))
	}))
	s.handle(mux, "DELETE /v1/schedules/{id}", rolePeople, s.staffDelete(func(r *http.Request) error {
		return s.access.RemoveSchedule(r.Context(), actor(r), r.PathValue("id"))
	}))
	s.handle(mux, "PUT /v1/doors/{id}", roleAdmin, admin(s, func(r *http.Request, c *access.DoorChange) (any, error) {
		return s.access.UpdateDoor(r.Context(), actor(r), r.PathValue("id"), *c)
	}))
	s.handle(mux, "POST /v1/import/people", rolePeople, s.importPeople)
	s.handle(mux, "GET /v1/export/people", rolePeople, s.exportPeople)
}

// page reads after (a cursor: the last id of the previous page) and limit (default 50, at most 500).
func page(r *http.Request) (after string, limit int, err error) {
	q := r.URL.Query()
	limit, err = intParam(q.Get("limit"), 50, 1, 500, "limit")
	return q.Get("after"), limit, err
}

// listPage is a GET of one list a page at a time (GET /v1/units, /v1/rules, /v1/schedules,
// /v1/groups): list reads the page after the cursor, cursor names an item for the next.
func listPage[T any](s *Server, key string, list func(r *http.Request, after string, limit int) ([]T, error), cursor func(T) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		after, limit, ok := s.pageOf(w, r)
		if !ok {
			return
		}
		items, err := list(r, after, limit)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		pageOut(w, key, items, limit, cursor)
	}
}

// pageOf reads a list's page (page), or answers why not (no access store, a bad limit).
func (s *Server) pageOf(w http.ResponseWriter, r *http.Request) (after string, limit int, ok bool) {
	if !s.needAccess(w, r) {
		return "", 0, false
	}
	after, limit, err := page(r)
	if err != nil {
		s.writeError(w, r, err)
		return "", 0, false
	}
	return after, limit, true
}

// pageOut answers a page of items; next is the cursor of the following page ("" at the end).
func pageOut[T any](w http.ResponseWriter, key string, items []T, limit int, last func(T) string) {
	if items == nil {
		items = []T{}
	}
	resp := map[string]any{key: items}
	if len(items) == limit {
		resp["next"] = last(items[len(items)-1])
	}
	writeJSON(w, http.StatusOK, resp)
}

// listPeople is GET /v1/people?q=&unit=&card=&plate=&kind=&after=&limit=. A search by card or
// plate names whose it is: it is audited.
func (s *Server) listPeople(w http.ResponseWriter, r *http.Request) {
	after, limit, ok := s.pageOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := access.PeopleFilter{Q: q.Get("q"), Unit: q.Get("unit"), Card: q.Get("card"), Plate: q.Get("plate"), Kind: q.Get("kind"), After: after, Limit: limit}
	if len(f.Q) > 100 || len(f.Card) > 256 || len(f.Plate) > 32 {
		s.writeError(w, r, badRequest("q, card or plate is too long"))
		return
	}
	list, err := s.access.People(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if f.Card != "" || f.Plate != "" {
		n := len(list)
		if _, ok := s.audit(w, r, "people.search", "", map[string]any{"by": map[bool]string{true: "card", false: "plate"}[f.Card != ""]}, &n); !ok {
			return
		}
	}
	pageOut(w, "people", list, limit, func(p access.PersonRow) string { return p.ID })
}

// getPerson is GET /v1/people/{id}: leases, credentials (never a secret; a car's plate), faces,
// groups, app access. Audited: it is a resident's file.
func (s *Server) getPerson(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	p, err := s.access.Person(r.Context(), r.PathValue("id"))
	if errors.Is(err, access.ErrNotFound) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, ok := s.audit(w, r, "person.read", "", map[string]any{"person": p.ID}, nil); !ok {
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// listLeases is GET /v1/leases?person=&unit=&ending_within_days=&after=&limit=: a person's or a
// unit's leases, or the calendar of leases ending in the next days (by end).
func (s *Server) listLeases(w http.ResponseWriter, r *http.Request) {
	after, limit, ok := s.pageOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := access.LeaseFilter{Person: q.Get("person"), Unit: q.Get("unit"), Limit: limit}
	if v := q.Get("ending_within_days"); v != "" {
		days, err := intParam(v, 30, 1, 366, "ending_within_days")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.EndsFrom = time.Now()
		f.EndsTo = f.EndsFrom.AddDate(0, 0, days)
	}
	if after != "" {
		ends, id, cal := strings.Cut(after, "~")
		if !cal {
			id = ends
		}
		var err1, err2 error
		f.AfterID, err1 = strconv.ParseInt(id, 10, 64)
		if cal {
			f.AfterEnds, err2 = time.Parse(time.RFC3339Nano, ends)
		}
		if err1 != nil || err2 != nil || cal != !f.EndsFrom.IsZero() {
			s.writeError(w, r, badRequest("after is the previous page's next"))
			return
		}
	}
	list, err := s.access.Leases(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cursor := func(l access.LeaseRow) string { return strconv.FormatInt(l.ID, 10) }
	if !f.EndsFrom.IsZero() {
		cursor = func(l access.LeaseRow) string {
			return l.Ends.Format(time.RFC3339Nano) + "~" + strconv.FormatInt(l.ID, 10)
		}
	}
	pageOut(w, "leases", list, limit, cursor)
}

// endLease is POST /v1/leases/{id}/end {"at"?, "reason"}: the lease ends now (or at "at"), and
// with it every way its person opened its doors.
func (s *Server) endLease(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, badRequest("lease id must be a number"))
		return
	}
	var req struct {
		At     time.Time `json:"at"`
		Reason string    `json:"reason"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := reasonOf(req.Reason); err != nil {
		s.writeError(w, r, err)
		return
	}
	l, err := s.access.EndLease(r.Context(), actor(r), id, req.At, req.Reason)
	s.staffResult(w, r, err, l)
}

// staffDelete runs a removal and answers 200 {"removed": true}, 404 for what is not there.
func (s *Server) staffDelete(fn func(r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.needAccess(w, r) {
			return
		}
		s.staffResult(w, r, fn(r), map[string]any{"removed": true})
	}
}

// staffResult answers a staff change: 200 with v, 404 for what is not there, or the error mapped.
func (s *Server) staffResult(w http.ResponseWriter, r *http.Request, err error, v any) {
	if err != nil {
		s.adminResult(w, r, err, nil) // 404 for what is not there, 400 for what is invalid
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// removeRule is DELETE /v1/rules/{id}.
func (s *Server) removeRule(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, badRequest("rule id must be a number"))
		return
	}
	err = s.access.RemoveRule(r.Context(), actor(r), id)
	s.staffResult(w, r, err, map[string]any{"id": id, "removed": true})
}

// inviter makes residents' one-time app invitations and spends them (auth.Principals).
type inviter interface {
	Invite(ctx context.Context, person, by string) (string, time.Time, error)
	Join(ctx context.Context, code string) (*auth.Principal, string, error)
}

// appInvitation is POST /v1/people/{id}/app-invitation: a one-time link for a resident's phone
// (valid auth.InviteTTL); whoever opens it first gets a resident token acting for the person.
func (s *Server) appInvitation(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.auth.(inviter)
	if !s.needAccess(w, r) {
		return
	}
	if !ok {
		s.writeError(w, r, errNoAuth)
		return
	}
	p, err := s.access.Person(r.Context(), r.PathValue("id"))
	if errors.Is(err, access.ErrNotFound) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.Kind != "resident" {
		s.writeError(w, r, badRequest("only residents get the app (this person is "+p.Kind+")"))
		return
	}
	code, expires, err := inv.Invite(r.Context(), p.ID, actor(r).Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, ok := s.audit(w, r, "resident.invite", "", map[string]any{"person": p.ID, "expires": expires}, nil); !ok {
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"person": p.ID, "code": code, "link": "/#/join?code=" + code, "expires": expires})
}

// MaxImportBytes bounds an import file (the site's 39,000 residents take about 3 MB).
const MaxImportBytes = 64 << 20

// importPeople is POST /v1/import/people?dry_run=true&tz=Asia/Shanghai (a CSV body, columns
// access.ImportColumns): the dry run lists every problem with its line; without dry_run the
// rows are imported in one transaction, or not at all when a problem is found (422). With
// Accept: application/x-ndjson the answer streams progress lines ({"stage", "done", "total"})
// before the report ({"report": …}).
func (s *Server) importPeople(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	q := r.URL.Query()
	dryRun := q.Get("dry_run") == "true" || q.Get("dry_run") == "1"
	loc := time.Local
	if tz := q.Get("tz"); tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			s.writeError(w, r, badRequest("tz is an IANA time zone (Asia/Shanghai)"))
			return
		}
	}
	// The whole file is read before the answer starts: an HTTP/1.1 answer that has begun may
	// not read its request's body any more.
	file, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		s.writeError(w, r, uploadError(err))
		return
	}
	stream := strings.Contains(r.Header.Get("Accept"), "application/x-ndjson")
	var progress access.ImportProgress
	if stream {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		enc := json.NewEncoder(w)
		last := time.Time{}
		progress = func(stage string, done, total int) {
			if time.Since(last) < 200*time.Millisecond && done != total {
				return
			}
			last = time.Now()
			_ = enc.Encode(map[string]any{"stage": stage, "done": done, "total": total})
			_ = rc.Flush()
		}
	}
	rep, err := s.access.ImportPeople(r.Context(), actor(r), bytes.NewReader(file), loc, dryRun, progress) // audited as people.import when it writes
	if stream {
		out := map[string]any{"report": rep}
		if err != nil {
			out = map[string]any{"error": err.Error()}
		}
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	switch {
	case err != nil:
		s.adminResult(w, r, err, nil)
	case !dryRun && rep.ProblemsAll > 0:
		writeJSON(w, http.StatusUnprocessableEntity, rep)
	case dryRun:
		writeJSON(w, http.StatusOK, rep)
	default:
		writeJSON(w, http.StatusCreated, rep)
	}
}

// exportPeople is GET /v1/export/people: every person, a row per lease, as the import reads
// them (no card numbers or PINs). Audited.
func (s *Server) exportPeople(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	if _, ok := s.audit(w, r, "people.export", "", map[string]any{}, nil); !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="people.csv"`)
	if _, err := s.access.ExportPeople(r.Context(), w); err != nil {
		s.log.Warn("people export cut short", "err", err)
	}
}
