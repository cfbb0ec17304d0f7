package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
)

// roleResident is a resident on their phone: their own unit, credentials, face and visitors only.
var roleResident = []string{auth.RoleResident}

// residentLimits throttles what a resident's token can do to the doors: remote opens and new
// invitations, per person (a stolen phone cannot open a door every second or flood a building
// with QR codes).
func newResidentLimits() *limits {
	return &limits{callers: map[string]*caller{}, now: time.Now, rate: 0.1, burst: 6, failRate: 1, failBurst: 30, maxCallers: 100000}
}

// meRoutes adds the resident's self-service and the public join of an app invitation.
func (s *Server) meRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/me/home", roleResident, s.meHome)
	s.handle(mux, "POST /v1/me/credentials/{id}/lost", roleResident, s.meLost)
	s.handle(mux, "POST /v1/me/face", roleResident, s.enrolFaceOf(mePerson))
	s.handle(mux, "DELETE /v1/me/face", roleResident, s.meEraseFace)
	s.handle(mux, "POST /v1/me/visitors", roleResident, s.meInvite)
	s.handle(mux, "GET /v1/me/visitors", roleResident, s.meVisitors)
	s.handle(mux, "DELETE /v1/me/visitors/{id}", roleResident, s.meRevokeVisit)
	s.handle(mux, "POST /v1/me/doors/{id}/open", roleResident, s.meOpen)
	s.public(mux, "POST /v1/join", "none", http.HandlerFunc(s.join))
}

// mePerson is the person a resident's token acts for ("" for none).
func mePerson(r *http.Request) string {
	if p := principalOf(r); p != nil {
		return p.Person
	}
	return ""
}

// me is the request's person, or false after answering 403 (a resident token that names no
// person) or 503 (no access store).
func (s *Server) me(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !s.needAccess(w, r) {
		return "", false
	}
	person := mePerson(r)
	if person == "" {
		s.writeError(w, r, forbidden{role: "resident token without a person", allowed: []string{"a resident token made with --person"}})
		return "", false
	}
	return person, true
}

// meHome is GET /v1/me/home: the resident's own file (units, leases, credentials, face), their
// recent entries, the doors they may open and invite visitors to.
func (s *Server) meHome(w http.ResponseWriter, r *http.Request) {
	person, ok := s.me(w, r)
	if !ok {
		return
	}
	p, err := s.access.Person(r.Context(), person)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	entries, err := s.access.PersonEntries(r.Context(), []string{person}, time.Now().AddDate(0, 0, -30), 50)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	doors := []map[string]string{}
	mine := s.access.SponsorDoors(person)
	for _, d := range s.access.Doors() {
		if slices.Contains(mine, d.ID) {
			doors = append(doors, map[string]string{"id": d.ID, "name": d.Name})
		}
	}
	if entries == nil {
		entries = []access.DoorEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"person": p, "entries": entries, "doors": doors})
}

// meLost is POST /v1/me/credentials/{id}/lost: the resident reports a card (or any credential of
// theirs) lost; it is revoked at once.
func (s *Server) meLost(w http.ResponseWriter, r *http.Request) {
	person, ok := s.me(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, badRequest("credential id must be a number"))
		return
	}
	p, err := s.access.Person(r.Context(), person)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !slices.ContainsFunc(p.Credentials, func(c access.CredentialRow) bool { return c.ID == id && c.RevokedAt == nil }) {
		s.writeError(w, r, errNotFound) // not theirs, or revoked already: the same answer
		return
	}
	err = s.access.RevokeCredential(r.Context(), actor(r), id, "reported lost by its holder")
	s.staffResult(w, r, err, map[string]any{"id": id, "revoked": true})
}

// meEraseFace is DELETE /v1/me/face: the resident deletes their own face data (templates, face
// events, vectors, snapshots), as staff can on their behalf.
func (s *Server) meEraseFace(w http.ResponseWriter, r *http.Request) {
	person, ok := s.me(w, r)
	if !ok {
		return
	}
	s.erasePerson(w, r, person, "the resident's own request")
}

// meInvite is POST /v1/me/visitors {"name", "from", "until", "plate"?, "doors"?}: a visitor's QR
// code (and car) for some of the resident's doors in a window.
func (s *Server) meInvite(w http.ResponseWriter, r *http.Request) {
	person, ok := s.me(w, r)
	if !ok {
		return
	}
	if !s.residentLimits.allow("invite:" + person) {
		s.tooMany(w, r)
		return
	}
	var req access.VisitRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	v, qr, err := s.access.Invite(r.Context(), actor(r), person, req)
	if err != nil {
		s.adminResult(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": v.ID, "qr": qr, "link": "/#/visit?qr=" + qr, "from": v.From, "until": v.Until,
		"doors": v.Doors, "plate": v.Plate, "name": v.Name})
}

// meVisitors is GET /v1/me/visitors: the resident's invitations, newest first, each with its uses.
func (s *Server) meVisitors(w http.ResponseWriter, r *http.Request) {
	person, ok := s.me(w, r)
	if !ok {
		return
	}
	_, limit, err := page(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	vs, err := s.access.Visits(r.Context(), person, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if vs == nil {
		vs = []access.Visit{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"visitors": vs})
}

// meRevokeVisit is DELETE /v1/me/visitors/{id}: the invitation's QR code and plate stop opening.
func (s *Server) meRevokeVisit(w http.ResponseWriter, r *http.Request) {
	person, ok := s.me(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	err := s.access.RevokeVisit(r.Context(), actor(r), person, id)
	s.staffResult(w, r, err, map[string]any{"id": id, "revoked": true})
}

// meOpen is POST /v1/me/doors/{id}/open {"reason"?}: the resident opens one of their own doors
// from the phone (a visitor at the intercom). Only doors whose rules name them, while their
// lease is in force; throttled per person and audited like any remote unlock.
func (s *Server) meOpen(w http.ResponseWriter, r *http.Request) {
	person, ok := s.me(w, r)
	if !ok {
		return
	}
	door := r.PathValue("id")
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !slices.Contains(s.access.SponsorDoors(person), door) || !s.access.MayOpenNow(door, person) {
		s.writeError(w, r, forbidden{role: auth.RoleResident, allowed: []string{"a resident whose rules and lease open this door now"}})
		return
	}
	if !s.residentLimits.allow("open:" + person) {
		s.tooMany(w, r)
		return
	}
	reason := "opened by resident " + person + " from the app"
	if req.Reason != "" && len(req.Reason) <= 200 {
		reason += ": " + req.Reason
	}
	cmd, err := s.access.RemoteUnlock(r.Context(), actor(r), door, reason)
	if err != nil {
		s.adminResult(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusCreated, cmd)
}

// join is POST /v1/join {"code"}: a resident opens the invitation link staff gave them and gets
// a token for their phone. Unauthenticated: a wrong code counts as a failed token guess.
func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.auth.(inviter)
	if !ok {
		s.writeError(w, r, errNoAuth)
		return
	}
	ip := s.callerKey(r)
	if s.tokenLimits.blocked(ip) {
		s.tooMany(w, r)
		return
	}
	var req struct {
		Code string `json:"code"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, token, err := inv.Join(r.Context(), req.Code)
	if errors.Is(err, auth.ErrInvitation) {
		s.tokenLimits.failed(ip)
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.auditor != nil {
		d, _ := json.Marshal(map[string]any{"person": p.Person, "principal": p.ID})
		if _, err := s.auditor.Append(r.Context(), audit.Entry{Actor: p.Name, Role: p.Role, Action: "resident.join", Detail: d}); err != nil {
			s.log.Warn("a resident's join not audited", "person", p.Person, "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "name": p.Name, "role": p.Role, "person": p.Person})
}
