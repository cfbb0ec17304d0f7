package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/api/console"
	liveview "github.com/vigil-oss/vigil/api/live"
)

// routesLive adds the WHEP endpoints: POST /v1/live/{camera}/whep (an SDP offer; 201 with the
// answer and the session's Location) and DELETE on that Location.
func (s *Server) routesLive(mux *http.ServeMux) {
	s.handle(mux, "POST /v1/live/{camera}/whep", roleWatch, s.whepOffer)
	s.handle(mux, "DELETE /v1/live/{camera}/whep/{session}", roleWatch, s.whepDelete)
}

func (s *Server) whepOffer(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("camera")
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/sdp" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "the body must be an SDP offer (Content-Type: application/sdp)"})
		return
	}
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		s.writeError(w, r, uploadError(err))
		return
	}
	if s.relayToOwner(w, r, camera, offer) {
		return // another node runs the camera
	}
	if s.relay == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "live view is off on this node"})
		return
	}
	owner := ""
	if p := principalOf(r); p != nil {
		owner = strconv.FormatInt(p.ID, 10)
	}
	sess, err := s.relay.Offer(r.Context(), camera, string(offer), owner)
	if p := principalOf(r); err == nil && p != nil && s.auth != nil && s.auth.IsRevoked(p.ID) {
		_ = s.relay.CloseSession(camera, sess.ID) // revoked while its answer was made
		s.writeError(w, r, errUnauthorized)
		return
	}
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, liveview.ErrNoCamera):
			status = http.StatusNotFound
		case errors.Is(err, liveview.ErrBadOffer):
			status = http.StatusBadRequest
		case errors.Is(err, liveview.ErrCodec):
			status = http.StatusNotAcceptable
		case errors.Is(err, liveview.ErrOwnerLimit):
			status = http.StatusTooManyRequests
		case errors.Is(err, liveview.ErrNoVideo), errors.Is(err, liveview.ErrTooMany), errors.Is(err, liveview.ErrBusy), errors.Is(err, liveview.ErrPeerGone):
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "2")
		}
		if status == http.StatusInternalServerError {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, status, map[string]string{"error": err.Error(), "camera": camera})
		return
	}
	for _, l := range s.relay.ICELinks() {
		w.Header().Add("Link", l)
	}
	w.Header().Set("Location", fmt.Sprintf("/v1/live/%s/whep/%s", camera, sess.ID))
	if s.cluster != nil {
		w.Header().Set("X-Vigil-Node", s.cluster.Self().ID) // the node the media comes from
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, sess.Answer)
}

func (s *Server) whepDelete(w http.ResponseWriter, r *http.Request) {
	if s.relay == nil || s.relay.CloseSession(r.PathValue("camera"), r.PathValue("session")) != nil {
		if s.relayToOwner(w, r, r.PathValue("camera"), nil) {
			return // the session is on the camera's node
		}
		s.writeError(w, r, errNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// routesConsole serves the web console (/ and /static/…) and GET /v1/me, the signed-in
// principal the console shows and picks its pages by.
func (s *Server) routesConsole(mux *http.ServeMux) {
	h := console.Handler()
	s.public(mux, "GET /{$}", "none", h)
	s.public(mux, "GET /static/", "none", h)
	s.handle(mux, "GET /v1/me", roleAny, func(w http.ResponseWriter, r *http.Request) {
		p := principalOf(r)
		if p == nil { // a node without a database: no sign-in, every page
			writeJSON(w, http.StatusOK, map[string]string{"name": "open node", "role": auth.RoleAdmin})
			return
		}
		me := map[string]any{"name": p.Name, "role": p.Role, "id": p.ID}
		if p.Person != "" && s.access != nil { // a resident's token: the person it acts for
			person := map[string]any{"id": p.Person}
			if names, err := s.access.PersonNames(r.Context(), []string{p.Person}); err == nil {
				person["name"] = names[p.Person]
			}
			me["person"] = person
		}
		writeJSON(w, http.StatusOK, me)
	})
}
