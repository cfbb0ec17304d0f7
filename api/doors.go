package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
)

var roleAdmin = []string{auth.RoleAdmin}

func (s *Server) doorRoutes(mux *http.ServeMux) {
	// Controllers sign their requests with their door's key; no bearer token.
	s.controllerRoutes(mux)
	s.handle(mux, "POST /v1/units", rolePeople, admin(s, s.adminUnit))
	s.handle(mux, "POST /v1/people", rolePeople, admin(s, s.adminPerson))
	s.handle(mux, "POST /v1/people/{id}/leases", rolePeople, admin(s, s.adminLease))
	s.handle(mux, "POST /v1/people/{id}/credentials", rolePeople, admin(s, s.adminCredential))
	s.handle(mux, "POST /v1/people/{id}/blacklist", roleAdmin, admin(s, s.adminBlacklist))
	s.handle(mux, "DELETE /v1/credentials/{id}", rolePeople, s.adminRevoke)
	s.handle(mux, "POST /v1/schedules", rolePeople, admin(s, s.adminSchedule))
	s.handle(mux, "POST /v1/doors", roleAdmin, admin(s, s.adminDoor))
	s.handle(mux, "POST /v1/doors/{id}/rules", rolePeople, admin(s, s.adminRule))
	s.handle(mux, "PUT /v1/doors/{id}/face-policy", roleAdmin, admin(s, s.adminFacePolicy))
	s.handle(mux, "PUT /v1/doors/{id}/plate-policy", roleAdmin, admin(s, s.adminPlatePolicy))
	s.handle(mux, "GET /v1/parking", roleParking, s.parking)
	s.handle(mux, "POST /v1/groups", rolePeople, admin(s, s.adminGroup))
	s.handle(mux, "POST /v1/groups/{id}/members", rolePeople, admin(s, s.adminGroupMember))
	s.handle(mux, "POST /v1/people/{id}/faces", rolePeople, s.enrolFace)
	s.handle(mux, "POST /v1/faces/check", append([]string{auth.RoleResident}, rolePeople...), s.checkFace)
	s.handle(mux, "DELETE /v1/people/{id}/biometrics", rolePeople, s.eraseBiometrics)
	s.handle(mux, "GET /v1/doors", roleParking, s.listDoors) // the police post, and staff editing rules
	s.handle(mux, "GET /v1/doors/{id}/recent", rolePost, s.doorRecent)
	s.handle(mux, "POST /v1/doors/{id}/unlock", roleAdmin, s.remoteUnlock)
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
	case errors.Is(err, access.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
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

type facePolicyReq struct {
	Policy string `json:"face_policy"`
}

// adminFacePolicy is PUT /v1/doors/{id}/face-policy: {"face_policy": "" | "face" |
// "face+credential" | "credential+face"}; it answers what the policy rests on.
func (s *Server) adminFacePolicy(r *http.Request, v *facePolicyReq) (any, error) {
	door := r.PathValue("id")
	if err := s.access.SetFacePolicy(r.Context(), actor(r), door, v.Policy); err != nil {
		return nil, err
	}
	risk, _ := s.access.FaceRisk(door)
	return risk, nil
}

type platePolicyReq struct {
	Policy string `json:"plate_policy"`
}

// adminPlatePolicy is PUT /v1/doors/{id}/plate-policy: {"plate_policy": "exact" | "confusable"}.
func (s *Server) adminPlatePolicy(r *http.Request, v *platePolicyReq) (any, error) {
	return v, s.access.SetPlatePolicy(r.Context(), actor(r), r.PathValue("id"), v.Policy)
}

// roleParking see the car parks' occupancy: staff and the police post.
var roleParking = []string{auth.RoleAdmin, auth.RoleProperty, auth.RoleOperator}

// parking is GET /v1/parking: every car park's cars, visitors' cars and those past their window.
func (s *Server) parking(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	ps, err := s.access.Parking(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ps == nil {
		ps = []access.CarPark{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"car_parks": ps})
}

type ruleReq struct {
	WhoKind  string `json:"who_kind"`
	Who      string `json:"who"`
	Schedule string `json:"schedule"`
	Factors  string `json:"factors"` // "" or "card+pin"
}

func (s *Server) adminRule(r *http.Request, v *ruleReq) (any, error) {
	return v, s.access.AddRule(r.Context(), actor(r), r.PathValue("id"), v.WhoKind, v.Who, v.Schedule, v.Factors)
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
