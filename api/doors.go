package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
)

var roleAdmin = []string{auth.RoleAdmin}

func (s *Server) doorRoutes(mux *http.ServeMux) {
	// Controllers sign their requests with their door's key; no bearer token.
	s.public(mux, "POST /v1/doors/{id}/decisions", "signed", http.HandlerFunc(s.decision))
	s.public(mux, "GET /v1/doors/{id}/commands", "signed", http.HandlerFunc(s.doorCommands))
	s.public(mux, "GET /v1/doors/{id}/credentials", "signed", http.HandlerFunc(s.doorCredentials))
	s.public(mux, "POST /v1/doors/{id}/offline-decisions", "signed", http.HandlerFunc(s.offlineDecisions))
	s.handle(mux, "POST /v1/units", roleAdmin, admin(s, s.adminUnit))
	s.handle(mux, "POST /v1/people", roleAdmin, admin(s, s.adminPerson))
	s.handle(mux, "POST /v1/people/{id}/leases", roleAdmin, admin(s, s.adminLease))
	s.handle(mux, "POST /v1/people/{id}/credentials", roleAdmin, admin(s, s.adminCredential))
	s.handle(mux, "POST /v1/people/{id}/blacklist", roleAdmin, admin(s, s.adminBlacklist))
	s.handle(mux, "DELETE /v1/credentials/{id}", roleAdmin, s.adminRevoke)
	s.handle(mux, "POST /v1/schedules", roleAdmin, admin(s, s.adminSchedule))
	s.handle(mux, "POST /v1/doors", roleAdmin, admin(s, s.adminDoor))
	s.handle(mux, "POST /v1/doors/{id}/rules", roleAdmin, admin(s, s.adminRule))
	s.handle(mux, "POST /v1/groups", roleAdmin, admin(s, s.adminGroup))
	s.handle(mux, "POST /v1/groups/{id}/members", roleAdmin, admin(s, s.adminGroupMember))
	s.handle(mux, "POST /v1/people/{id}/faces", roleAdmin, s.enrolFace)
	s.handle(mux, "DELETE /v1/people/{id}/biometrics", roleAdmin, s.eraseBiometrics)
	s.handle(mux, "GET /v1/doors", rolePost, s.listDoors)
	s.handle(mux, "GET /v1/doors/{id}/recent", rolePost, s.doorRecent)
	s.handle(mux, "POST /v1/doors/{id}/unlock", roleAdmin, s.remoteUnlock)
}

// decision is POST /v1/doors/{id}/decisions: {"credential": {"kind": "card", "value": "…"}},
// signed by the door's controller. The answer is signed back; refusals and denials are audited.
func (s *Server) decision(w http.ResponseWriter, r *http.Request) {
	if s.access == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	id := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 2*MaxUpload)) // a face credential carries a JPEG
	if err != nil {
		s.writeError(w, r, uploadError(err))
		return
	}
	door, nonce, ok := s.controller(w, r, body)
	if !ok {
		return
	}
	var req struct {
		Credential access.Presented `json:"credential"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Credential.Kind == "" {
		s.writeError(w, r, badRequest(`body must be {"credential": {"kind": "card|pin|qr", "value": "…"}}`))
		return
	}
	var d access.Decision
	if req.Credential.Kind == "face" {
		d, err = s.faceDecision(r.Context(), id, req.Credential.Value, nonce)
	} else {
		d, err = s.access.Decide(r.Context(), id, req.Credential, nonce)
	}
	var br badRequest
	if errors.As(err, &br) || errors.Is(err, errTooLarge) {
		s.writeError(w, r, err)
		return
	}
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %v", errAuditUnavailable, err))
		return
	}
	writeSigned(w, door, nonce, d)
}

// doorCommands is the controller's persistent channel: GET /v1/doors/{id}/commands?wait=25
// (signed like a decision, over an empty body) waits up to wait seconds (at most 55) for unlock
// commands and answers them signed; 204 when none came.
func (s *Server) doorCommands(w http.ResponseWriter, r *http.Request) {
	if s.access == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	door, nonce, ok := s.controller(w, r, nil)
	if !ok {
		return
	}
	wait, err := intParam(r.URL.Query().Get("wait"), 25, 0, 55, "wait")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cmds := s.access.Commands(r.Context(), door.ID, time.Duration(wait)*time.Second)
	if len(cmds) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeSigned(w, door, nonce, map[string]any{"commands": cmds})
}

// actor is the admin making a change.
func actor(r *http.Request) auth.Actor {
	if p := principalOf(r); p != nil {
		return auth.Actor{Name: p.Name, Role: p.Role}
	}
	return auth.Actor{Name: "anonymous", Role: "none"}
}

// decodeJSON reads a JSON request body (at most 64 KB; larger is 413).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v); err != nil {
		return uploadError(err)
	}
	return nil
}

// adminResult answers an admin change: 201 with v, or the error mapped.
func (s *Server) adminResult(w http.ResponseWriter, r *http.Request, err error, v any) {
	switch {
	case errors.Is(err, access.ErrExists):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case errors.Is(err, access.ErrInvalid):
		s.writeError(w, r, badRequest(err.Error()))
	case err != nil:
		s.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusCreated, v)
	}
}

func (s *Server) needAccess(w http.ResponseWriter, r *http.Request) bool {
	if s.access == nil {
		s.writeError(w, r, errNoStore)
		return false
	}
	return true
}

// admin runs one admin change: the JSON body decoded into a T, then fn, answered 201 with what
// fn returns (or the error mapped).
func admin[T any](s *Server, fn func(r *http.Request, v *T) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.needAccess(w, r) {
			return
		}
		var v T
		if err := decodeJSON(w, r, &v); err != nil {
			s.writeError(w, r, err)
			return
		}
		out, err := fn(r, &v)
		s.adminResult(w, r, err, out)
	}
}

type unitReq struct{ ID, Name, Building string }

func (s *Server) adminUnit(r *http.Request, v *unitReq) (any, error) {
	return v, s.access.AddUnit(r.Context(), actor(r), v.ID, v.Name, v.Building)
}

type personReq struct{ ID, Name, Kind string }

func (s *Server) adminPerson(r *http.Request, v *personReq) (any, error) {
	return v, s.access.AddPerson(r.Context(), actor(r), v.ID, v.Name, v.Kind)
}

type leaseReq struct {
	Unit   string    `json:"unit"`
	Starts time.Time `json:"starts"`
	Ends   time.Time `json:"ends"`
}

func (s *Server) adminLease(r *http.Request, v *leaseReq) (any, error) {
	return v, s.access.AddLease(r.Context(), actor(r), r.PathValue("id"), v.Unit, v.Starts, v.Ends)
}

func (s *Server) adminCredential(r *http.Request, v *access.NewCredential) (any, error) {
	id, qr, err := s.access.AddCredential(r.Context(), actor(r), r.PathValue("id"), *v)
	out := map[string]any{"id": id, "kind": v.Kind}
	if qr != "" {
		out["qr"] = qr // shown once
	}
	return out, err
}

type blacklistReq struct {
	Blacklisted bool   `json:"blacklisted"`
	Reason      string `json:"reason"`
}

func (s *Server) adminBlacklist(r *http.Request, v *blacklistReq) (any, error) {
	if _, err := reasonOf(v.Reason); err != nil {
		return nil, fmt.Errorf("%w: %v", access.ErrInvalid, err)
	}
	return v, s.access.SetBlacklisted(r.Context(), actor(r), r.PathValue("id"), v.Blacklisted, v.Reason)
}

func (s *Server) adminRevoke(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, badRequest("credential id must be a number"))
		return
	}
	err = s.access.RevokeCredential(r.Context(), actor(r), id, r.URL.Query().Get("reason"))
	if err == nil {
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "revoked": true})
		return
	}
	s.adminResult(w, r, err, nil)
}

type scheduleReq struct {
	ID       string          `json:"id"`
	Weekly   json.RawMessage `json:"weekly"`
	Holidays json.RawMessage `json:"holidays"`
	TZ       string          `json:"tz"`
}

func (s *Server) adminSchedule(r *http.Request, v *scheduleReq) (any, error) {
	return v, s.access.AddSchedule(r.Context(), actor(r), v.ID, v.Weekly, v.Holidays, v.TZ)
}

func (s *Server) adminDoor(r *http.Request, v *access.Door) (any, error) {
	key, err := s.access.AddDoor(r.Context(), actor(r), *v)
	return map[string]any{"door": v, "key": hex.EncodeToString(key)}, err
}

type ruleReq struct {
	WhoKind  string `json:"who_kind"`
	Who      string `json:"who"`
	Schedule string `json:"schedule"`
}

func (s *Server) adminRule(r *http.Request, v *ruleReq) (any, error) {
	return v, s.access.AddRule(r.Context(), actor(r), r.PathValue("id"), v.WhoKind, v.Who, v.Schedule)
}

type groupReq struct{ ID, Name string }

func (s *Server) adminGroup(r *http.Request, v *groupReq) (any, error) {
	return v, s.access.AddGroup(r.Context(), actor(r), v.ID, v.Name)
}

type memberReq struct {
	Person string `json:"person"`
}

func (s *Server) adminGroupMember(r *http.Request, v *memberReq) (any, error) {
	return v, s.access.AddGroupMember(r.Context(), actor(r), r.PathValue("id"), v.Person)
}

// controller checks a controller's signed request (body nil for GETs): the door must exist and
// the signature, timestamp and nonce hold; refusals are audited and answered here.
func (s *Server) controller(w http.ResponseWriter, r *http.Request, body []byte) (*access.Door, string, bool) {
	if s.access == nil {
		s.writeError(w, r, errNoStore)
		return nil, "", false
	}
	id := r.PathValue("id")
	refuse := func(status int, reason string) {
		if err := s.access.Refuse(r.Context(), id, reason, r.RemoteAddr); err != nil {
			s.writeError(w, r, fmt.Errorf("%w: %v", errAuditUnavailable, err))
			return
		}
		writeJSON(w, status, map[string]any{"grant": false, "reason": reason})
	}
	door, ok := s.access.Door(id)
	if !ok {
		refuse(http.StatusNotFound, access.DenyUnknownDoor)
		return nil, "", false
	}
	nonce := r.Header.Get(access.HeaderNonce)
	if err := s.nonces.Verify(door, r.Method, r.URL.Path, r.Header.Get(access.HeaderTimestamp), nonce, r.Header.Get(access.HeaderSignature), body, time.Now()); err != nil {
		reason, _ := access.IsRequestError(err)
		refuse(http.StatusUnauthorized, reason)
		return nil, "", false
	}
	s.access.Seen(door.ID)
	return door, nonce, true
}

// writeSigned answers a controller with v, signed with its door's key over its nonce.
func writeSigned(w http.ResponseWriter, door *access.Door, nonce string, v any) {
	out, _ := json.Marshal(v)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(access.HeaderTimestamp, now)
	w.Header().Set(access.HeaderNonce, nonce)
	w.Header().Set(access.HeaderSignature, access.SignResponse(door.Key, now, nonce, out))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// doorCredentials is GET /v1/doors/{id}/credentials?since=VERSION: the door's offline cache
// (credential hashes, windows, schedules, fail mode), or unchanged when the controller holds the
// current version.
func (s *Server) doorCredentials(w http.ResponseWriter, r *http.Request) {
	door, nonce, ok := s.controller(w, r, nil)
	if !ok {
		return
	}
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	c, err := s.access.Cache(r.Context(), door.ID, since)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeSigned(w, door, nonce, c)
}

// offlineDecisions is POST /v1/doors/{id}/offline-decisions: what a controller decided from its
// cache while vigil was unreachable, written to the audit chain.
func (s *Server) offlineDecisions(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		s.writeError(w, r, uploadError(err))
		return
	}
	door, nonce, ok := s.controller(w, r, body)
	if !ok {
		return
	}
	var req struct {
		Decisions []access.OfflineDecision `json:"decisions"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Decisions) > 10000 {
		s.writeError(w, r, badRequest(`body must be {"decisions": [...]} with at most 10,000 decisions`))
		return
	}
	if err := s.access.RecordOffline(r.Context(), door.ID, req.Decisions); err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %v", errAuditUnavailable, err))
		return
	}
	writeSigned(w, door, nonce, map[string]any{"recorded": len(req.Decisions)})
}

// listDoors is GET /v1/doors: every door and whether its controller is online.
func (s *Server) listDoors(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"doors": s.access.Doors()})
}

// doorRecent is GET /v1/doors/{id}/recent?limit=50: the door's latest decisions and unlocks.
func (s *Server) doorRecent(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	if _, ok := s.access.Door(r.PathValue("id")); !ok {
		s.writeError(w, r, errNotFound)
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), 50, 1, 500, "limit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	evs, err := s.access.RecentAtDoor(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if evs == nil {
		evs = []access.DoorEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

// remoteUnlock is POST /v1/doors/{id}/unlock {"reason": "…"} (admin): audited, then sent to the
// door's controller.
func (s *Server) remoteUnlock(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	var req struct{ Reason string }
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	cmd, err := s.access.RemoteUnlock(r.Context(), actor(r), r.PathValue("id"), req.Reason)
	if err != nil {
		s.adminResult(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusCreated, cmd)
}
