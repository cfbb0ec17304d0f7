package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/storage/events"
)

// roleVerdict may judge a match: the police post and investigators.
var roleVerdict = []string{auth.RoleAdmin, auth.RoleInvestigator, auth.RoleOperator}

// Verdicts is where verdicts are kept (events.Store).
type Verdicts interface {
	InsertVerdict(ctx context.Context, tx pgx.Tx, v *events.Verdict) error
	Verdicts(ctx context.Context, person, eventID string) ([]events.Verdict, error)
}

// routesVerdicts: operators correct matches.
//
//	POST /v1/events/{id}/verdict  {"verdict": "correct|wrong|this_is", "person"?, "note"?, "template"?}
//	GET  /v1/verdicts             ?person=&event=
func (s *Server) routesVerdicts(mux *http.ServeMux) {
	s.handle(mux, "POST /v1/events/{id}/verdict", roleVerdict, s.postVerdict)
	s.handle(mux, "GET /v1/verdicts", roleVerdict, s.listVerdicts)
}

// postVerdict records an operator's verdict on an event's match, audited in the same
// transaction (event.verdict, naming the event, the person matched and the person said). A wrong
// or this_is verdict on a face makes its descriptor a negative sample of the person matched:
// every node's matcher refuses that person for faces nearer it than the person's own templates
// (within seconds). template offers a correct (or this_is) face as the person's template: added
// only where that person is on a watch list, never to a resident's access templates.
func (s *Server) postVerdict(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.store.(Verdicts)
	if s.store == nil || !ok {
		s.writeError(w, r, errNoStore)
		return
	}
	var req struct {
		Verdict  string `json:"verdict"`
		Person   string `json:"person"`
		Note     string `json:"note"`
		Template bool   `json:"template"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Person, req.Note = strings.TrimSpace(req.Person), strings.TrimSpace(req.Note)
	switch {
	case req.Verdict != events.VerdictCorrect && req.Verdict != events.VerdictWrong && req.Verdict != events.VerdictThisIs:
		s.writeError(w, r, badRequest("verdict is correct, wrong or this_is"))
		return
	case (req.Verdict == events.VerdictThisIs) != (req.Person != ""), len(req.Person) > 128:
		s.writeError(w, r, badRequest("person (the id of who it really is) comes with this_is, and only with it"))
		return
	case len(req.Note) > 1000:
		s.writeError(w, r, badRequest("note: at most 1000 characters"))
		return
	case req.Template && req.Verdict == events.VerdictWrong:
		s.writeError(w, r, badRequest("template: a wrong match's face is no one's template"))
		return
	}
	e, err := s.store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, events.ErrNotFound) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if e.Kind != event.KindFace && e.Kind != event.KindPlate {
		s.writeError(w, r, badRequest("verdicts are given on face and plate events"))
		return
	}
	matched := ""
	if e.PersonID != nil {
		matched = *e.PersonID
	} else if e.Plate != nil && e.List != nil {
		matched = *e.Plate
	}
	if matched == "" && req.Verdict != events.VerdictThisIs {
		s.writeError(w, r, badRequest("the event matched no one: only this_is can be said of it"))
		return
	}
	if req.Verdict == events.VerdictThisIs && req.Person == matched {
		s.writeError(w, r, badRequest("this_is names someone else than the person matched (that is correct)"))
		return
	}
	who := actor(r)
	v := &events.Verdict{EventID: e.ID, EventTime: e.Time, Camera: e.Camera, Kind: e.Kind, Verdict: req.Verdict,
		Matched: matched, Person: req.Person, Note: req.Note, Template: req.Template, By: who.Name, Role: who.Role}
	effect := "recorded"
	if e.Kind == event.KindFace && s.embeddings != nil {
		if emb, err := s.embeddings.Embedding(r.Context(), e.ID); err == nil {
			v.Embedding, v.Model = emb, s.faceSpace.Name
		}
	}
	switch {
	case v.Embedding == nil && e.Kind == event.KindFace:
		effect = "recorded only: the event's face descriptor is not stored"
	case e.Kind == event.KindPlate:
		effect = "recorded (plates are matched by their text: a wrong plate read is fixed on the list)"
	case req.Verdict != events.VerdictCorrect && matched != "":
		effect = "this face, and faces nearer it than " + matched + "'s own templates, no longer match " + matched
	}
	if req.Template && v.Embedding != nil {
		effect += "; the shot is offered as a template: added where the person is on a watch list, never to a resident's access templates"
	}
	detail := map[string]any{"event": e.ID, "camera": e.Camera, "verdict": req.Verdict, "matched": matched, "person": req.Person,
		"template": req.Template}
	if s.auditor == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	d, _ := json.Marshal(detail)
	if _, err := s.auditor.Change(r.Context(), audit.Entry{Actor: who.Name, Role: who.Role, Action: "event.verdict", Reason: req.Note, Detail: d},
		nil, func(tx pgx.Tx) error { return vs.InsertVerdict(r.Context(), tx, v) }); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"verdict": v, "effect": effect})
}

// listVerdicts is GET /v1/verdicts?person=&event=: the verdicts about a person (matched to them,
// or said to be them) or an event, newest first.
func (s *Server) listVerdicts(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.store.(Verdicts)
	if s.store == nil || !ok {
		s.writeError(w, r, errNoStore)
		return
	}
	person, ev := r.URL.Query().Get("person"), r.URL.Query().Get("event")
	if person == "" && ev == "" {
		s.writeError(w, r, badRequest("person or event"))
		return
	}
	list, err := vs.Verdicts(r.Context(), person, ev)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []events.Verdict{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"verdicts": list})
}
