package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/search"
)

// DoorFaces turns photos into what face decisions and enrolments need (pipeline.Photos). Enrol
// applies the enrolment quality gate (one face, size, pose, liveness); a photo it refuses, or one
// that cannot be decoded, is an error with a BadInput method (see badInput).
type DoorFaces interface {
	Probe(ctx context.Context, img []byte) (access.FaceProbe, error)
	Enrol(ctx context.Context, img []byte) (access.FaceTemplate, error)
}

// badInput reports whether err is about what the client sent (a photo that cannot be decoded, a
// face the enrolment gate refuses): the API answers 422 with its message.
func badInput(err error) bool {
	var b interface{ BadInput() bool }
	return errors.As(err, &b) && b.BadInput()
}

// Eraser removes a person's face events from the bus, the store, the search index and the blob
// store, and names the exports that still hold them (search.Eraser).
type Eraser interface {
	ErasePerson(ctx context.Context, person string) (search.Erasure, error)
}

// faceDecision decides a face JPEG (base64 in the credential's value) at a door.
func (s *Server) faceDecision(ctx context.Context, door, value, nonce string) (access.Decision, error) {
	img, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(img) == 0 {
		return access.Decision{}, badRequest("a face credential's value is a base64 JPEG")
	}
	if len(img) > MaxUpload {
		return access.Decision{}, errTooLarge
	}
	probe := access.FaceProbe{}
	if s.doorFaces != nil {
		if probe, err = s.doorFaces.Probe(ctx, img); err != nil && !badInput(err) {
			return access.Decision{}, err
		}
	}
	return s.access.DecideFace(ctx, door, probe, nonce)
}

// enrolFace is POST /v1/people/{id}/faces: multipart image and consent (how it was given).
func (s *Server) enrolFace(w http.ResponseWriter, r *http.Request) {
	s.enrolFaceOf(func(r *http.Request) string { return r.PathValue("id") })(w, r)
}

// enrolFaceOf enrols a face for the person who(r) names (staff: the path's; a resident: their own).
func (s *Server) enrolFaceOf(who func(*http.Request) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.enrolFaceFor(w, r, who(r)) }
}

func (s *Server) enrolFaceFor(w http.ResponseWriter, r *http.Request, person string) {
	if !s.needAccess(w, r) {
		return
	}
	if person == "" {
		s.writeError(w, r, forbidden{role: "resident token without a person", allowed: []string{"a resident token made with --person"}})
		return
	}
	fields, img, ok := s.facePhoto(w, r)
	if !ok {
		return
	}
	consent := strings.TrimSpace(fields["consent"])
	if consent == "" {
		s.writeError(w, r, badRequest("consent is required: say how the resident gave it (e.g. \"signed form 2026-11-29\")"))
		return
	}
	release, ok := s.slot(w, r, s.doorSlots, "door photos")
	if !ok {
		return
	}
	defer release()
	t, err := s.doorFaces.Enrol(r.Context(), img)
	switch {
	case badInput(err):
		s.writeError(w, r, unprocessable(err.Error()))
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	t.Consent = consent
	id, err := s.access.AddFaceTemplate(r.Context(), actor(r), person, t)
	if errors.Is(err, access.ErrDuplicate) {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	s.adminResult(w, r, err, map[string]any{"id": id, "person": person, "quality": t.Quality, "liveness": t.Liveness})
}

// eraseBiometrics is DELETE /v1/people/{id}/biometrics?reason=…: templates, face events, their
// vectors and snapshots.
func (s *Server) eraseBiometrics(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	reason, err := reasonOf(r.URL.Query().Get("reason"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.erasePerson(w, r, r.PathValue("id"), reason)
}

// erasePerson erases a person's biometrics: templates, face events, their vectors and snapshots.
func (s *Server) erasePerson(w http.ResponseWriter, r *http.Request, person, reason string) {
	templates, err := s.access.EraseFaceTemplates(r.Context(), actor(r), person, reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.snaps.forget(person) // the live cache of recent best shots, and late events held back
	out := search.Erasure{Exports: []events.Export{}}
	if s.eraser != nil {
		if out, err = s.eraser.ErasePerson(r.Context(), person); err != nil {
			s.writeError(w, r, fmt.Errorf("templates erased, face events not: %w", err))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"person": person, "templates_erased": templates, "face_events_erased": out.Events,
		"bus_messages_erased": out.BusMessages, "snapshots_erased": out.Snapshots, "exports_still_holding": out.Exports})
}

// checkFace is POST /v1/faces/check (multipart image; person=ID for staff): what enrolment would
// say of a photo, without enrolling it — one face, size, pose, quality, liveness, and whether it
// matches someone else already enrolled. The console calls it about once a second while a person
// is framed in the browser's camera. A resident checks against their own person; the answer
// says only that the face matches someone else, never whom.
func (s *Server) checkFace(w http.ResponseWriter, r *http.Request) {
	if !s.needAccess(w, r) {
		return
	}
	fields, img, ok := s.facePhoto(w, r)
	if !ok {
		return
	}
	person := fields["person"]
	if p := principalOf(r); p != nil && p.Role == auth.RoleResident {
		person = p.Person
	}
	release, ok := s.slot(w, r, s.doorSlots, "door photos")
	if !ok {
		return
	}
	defer release()
	t, err := s.doorFaces.Enrol(r.Context(), img)
	out := map[string]any{"ok": false}
	switch {
	case badInput(err):
		out["problem"] = err.Error()
	case err != nil:
		s.writeError(w, r, err)
		return
	default:
		out["quality"], out["liveness"] = t.Quality, t.Liveness
		if other, dup := s.access.NearestOther(t.Embedding, person); dup {
			out["problem"] = "this face matches another enrolled person: it cannot be enrolled for this one"
			if p := principalOf(r); p == nil || p.Role != auth.RoleResident {
				out["duplicate_of"] = other
			}
		} else {
			out["ok"] = true
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// facePhoto reads a face photo upload (multipart image and fields), or answers why not.
func (s *Server) facePhoto(w http.ResponseWriter, r *http.Request) (map[string]string, []byte, bool) {
	if s.doorFaces == nil {
		s.writeError(w, r, errNoStore)
		return nil, nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxUpload+1<<20)
	fields, img, err := readPhotoForm(r)
	if err != nil {
		s.writeError(w, r, err)
		return nil, nil, false
	}
	if img == nil {
		s.writeError(w, r, badRequest("image is required"))
		return nil, nil, false
	}
	return fields, img, true
}
