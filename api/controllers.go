package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/access"
)

// Body limits of controllers' requests. The signature covers the body, so it must be read before
// it can be trusted: a card, PIN or QR decision is a few hundred bytes, and only a face decision
// (announced by X-Vigil-Credential-Kind: face) may carry a photo.
const (
	maxControllerBody = 16 << 10
	maxFaceBody       = 6 << 20 // a base64 JPEG of up to 4.5 MB
	maxOfflineBody    = 4 << 20 // up to 10,000 offline decisions
	headerKind        = "X-Vigil-Credential-Kind"
	// bodiesPerAddress is how many large bodies (photos, offline uploads) one address may be
	// sending at once, before any of them is known to be signed.
	bodiesPerAddress = 2
)

// bodyDeadline bounds reading a controller's body: a door unit on the site's network sends even a
// photo in well under a second, so one trickling a body in holds nothing for long. (A variable
// for tests.)
var bodyDeadline = 10 * time.Second

func (s *Server) controllerRoutes(mux *http.ServeMux) {
	// Controllers sign their requests with their door's key; no bearer token.
	s.public(mux, "POST /v1/doors/{id}/decisions", "signed", http.HandlerFunc(s.decision))
	s.public(mux, "GET /v1/doors/{id}/commands", "signed", http.HandlerFunc(s.doorCommands))
	s.public(mux, "GET /v1/doors/{id}/credentials", "signed", http.HandlerFunc(s.doorCredentials))
	s.public(mux, "POST /v1/doors/{id}/offline-decisions", "signed", http.HandlerFunc(s.offlineDecisions))
}

// controller authenticates a controller's signed request, cheapest checks first: the caller's
// address is not throttled, the door exists, the signature headers are well formed and recent;
// only then is the body read (at most maxBody, within bodyDeadline; a large one only while the
// address sends no more than bodiesPerAddress, and holding one of slots when that is set), and
// the signature over the whole request checked. Every refusal, an oversized or trickled body
// included, is counted (vigil_door_refusals_total{reason}), costs the address a failure token
// and is audited in aggregate, never one row per request; it is answered here, and ok is false.
// When ok, done gives the slot back (the caller defers it).
func (s *Server) controller(w http.ResponseWriter, r *http.Request, maxBody int64, slots chan struct{}) (door *access.Door, nonce string, body []byte, done func(), ok bool) {
	done = func() {}
	if s.access == nil {
		s.writeError(w, r, errNoStore)
		return nil, "", nil, done, false
	}
	ip := s.callerKey(r)
	if !s.doorLimits.allow(ip) {
		s.tooMany(w, r)
		return nil, "", nil, done, false
	}
	id := r.PathValue("id")
	count := func(reason string) {
		s.access.Refuse(id, reason, ip)
		s.refusals.WithLabelValues(reason).Inc()
		s.doorLimits.failed(ip)
	}
	refuse := func(status int, reason string) {
		count(reason)
		writeJSON(w, status, map[string]any{"grant": false, "reason": reason})
	}
	door, known := s.access.Door(id)
	if !known {
		refuse(http.StatusNotFound, access.DenyUnknownDoor)
		return nil, "", nil, done, false
	}
	ts, nonce, sig := r.Header.Get(access.HeaderTimestamp), r.Header.Get(access.HeaderNonce), r.Header.Get(access.HeaderSignature)
	now := time.Now()
	if err := access.CheckHeaders(ts, nonce, sig, now); err != nil {
		reason, _ := access.IsRequestError(err)
		refuse(http.StatusUnauthorized, reason)
		return nil, "", nil, done, false
	}
	if r.Method != http.MethodGet {
		if maxBody > maxControllerBody {
			if !s.doorLimits.bodies.Take(ip, bodiesPerAddress) {
				s.tooMany(w, r)
				return nil, "", nil, done, false
			}
			defer s.doorLimits.bodies.Give(ip)
			if slots != nil {
				release, got := s.slot(w, r, slots, "door photos")
				if !got {
					return nil, "", nil, done, false
				}
				done = release
				defer func() {
					if !ok { // refused after all: the slot goes back here
						release()
						done = func() {}
					}
				}()
			}
		}
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(bodyDeadline))
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		_ = rc.SetReadDeadline(time.Time{})
		if err != nil {
			count(access.DenyBadBody)
			s.writeError(w, r, uploadError(err))
			return nil, "", nil, done, false
		}
	}
	if err := s.nonces.Verify(door, r.Method, r.URL.Path, r.URL.RawQuery, ts, nonce, sig, body, now); err != nil {
		reason, _ := access.IsRequestError(err)
		refuse(http.StatusUnauthorized, reason)
		return nil, "", nil, done, false
	}
	s.access.Seen(door.ID)
	return door, nonce, body, done, true
}

// writeSigned answers a controller with v (nil: 204, no body), signed with its door's key over
// its nonce: every 200 and 204 to a signed request is signed, "no commands" included (errors
// are not: a controller acts on nothing but a signed 200 or 204).
func writeSigned(w http.ResponseWriter, door *access.Door, nonce string, v any) {
	var out []byte
	status := http.StatusNoContent
	if v != nil {
		out, _ = json.Marshal(v)
		status = http.StatusOK
		w.Header().Set("Content-Type", "application/json")
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	w.Header().Set(access.HeaderTimestamp, now)
	w.Header().Set(access.HeaderNonce, nonce)
	w.Header().Set(access.HeaderSignature, access.SignResponse(door.Key, now, nonce, out))
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// decision is POST /v1/doors/{id}/decisions: {"credential": {"kind": "card", "value": "…"}},
// signed by the door's controller. The answer is signed back; every decision is audited.
func (s *Server) decision(w http.ResponseWriter, r *http.Request) {
	limit := int64(maxControllerBody)
	if r.Header.Get(headerKind) == "face" {
		limit = maxFaceBody
	}
	var slots chan struct{}
	if limit == maxFaceBody {
		slots = s.doorSlots // taken before the photo is read, kept while it is decoded and matched
	}
	door, nonce, body, done, ok := s.controller(w, r, limit, slots)
	if !ok {
		return
	}
	defer done()
	var req struct {
		Credential access.Presented `json:"credential"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Credential.Kind == "" {
		s.writeError(w, r, badRequest(`body must be {"credential": {"kind": "card|pin|qr|face", "value": "…"}}`))
		return
	}
	if req.Credential.Kind == "face" && limit != maxFaceBody {
		s.writeError(w, r, badRequest("a face decision is announced with the header "+headerKind+": face"))
		return
	}
	var d access.Decision
	var err error
	if req.Credential.Kind == "face" {
		d, err = s.faceDecision(r.Context(), door.ID, req.Credential.Value, nonce)
	} else {
		d, err = s.access.Decide(r.Context(), door.ID, req.Credential, nonce)
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
// commands and answers them signed; a signed 204 when none came.
func (s *Server) doorCommands(w http.ResponseWriter, r *http.Request) {
	door, nonce, _, done, ok := s.controller(w, r, 0, nil)
	if !ok {
		return
	}
	defer done()
	wait, err := intParam(r.URL.Query().Get("wait"), 25, 0, 55, "wait")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	longLived(w, time.Duration(wait)*time.Second+10*time.Second)
	cmds := s.access.Commands(r.Context(), door.ID, time.Duration(wait)*time.Second)
	if len(cmds) == 0 {
		writeSigned(w, door, nonce, nil)
		return
	}
	writeSigned(w, door, nonce, map[string]any{"commands": cmds})
}

// doorCredentials is GET /v1/doors/{id}/credentials?since=VERSION: the door's offline cache
// (credential hashes, windows, schedules, fail mode), or unchanged when the controller holds the
// current version. The answer names the version its changes are based on.
func (s *Server) doorCredentials(w http.ResponseWriter, r *http.Request) {
	door, nonce, _, done, ok := s.controller(w, r, 0, nil)
	if !ok {
		return
	}
	defer done()
	since := int64(0)
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, badRequest("since is the version the controller holds (a number; 0 for none)"))
			return
		}
		since = n
	}
	c, err := s.access.Cache(r.Context(), door.ID, since)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeSigned(w, door, nonce, c)
}

// offlineDecisions is POST /v1/doors/{id}/offline-decisions: what a controller decided from its
// cache while vigil was unreachable, checked against what that door was sent and written to the
// audit chain.
func (s *Server) offlineDecisions(w http.ResponseWriter, r *http.Request) {
	door, nonce, body, done, ok := s.controller(w, r, maxOfflineBody, nil)
	if !ok {
		return
	}
	defer done()
	var req struct {
		Decisions []access.OfflineDecision `json:"decisions"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Decisions) > 10000 {
		s.writeError(w, r, badRequest(`body must be {"decisions": [...]} with at most 10,000 decisions`))
		return
	}
	unexpected, err := s.access.RecordOffline(r.Context(), door.ID, req.Decisions)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %v", errAuditUnavailable, err))
		return
	}
	writeSigned(w, door, nonce, map[string]any{"recorded": len(req.Decisions), "unexpected": unexpected})
}

// longLived lets a handler that holds its request open (a long poll, an event stream, a large
// download) outlive the server's read and write deadlines: d from now, or none when d is 0.
func longLived(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	_ = rc.SetReadDeadline(t)
	_ = rc.SetWriteDeadline(t)
}
