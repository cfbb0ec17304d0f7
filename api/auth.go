package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
)

// Authenticator resolves bearer tokens to principals (auth.Principals).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*auth.Principal, error)
	// IsRevoked reports whether the principal was revoked since it was authenticated (checked
	// once a stream or a live view is registered, so a revocation in between is not missed).
	IsRevoked(id int64) bool
}

// Auditor appends to the audit chain (access.Audit).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (int64, error)
	// Change runs fn and appends e in one transaction (a record and its audit row commit together).
	Change(ctx context.Context, e audit.Entry, detail func() json.RawMessage, fn func(tx pgx.Tx) error) (int64, error)
}

// Who may do what: every route names its roles here, and this is the one place they are checked.
var (
	roleWatch  = []string{auth.RoleAdmin, auth.RoleInvestigator, auth.RoleOperator, auth.RolePatrol}
	roleSearch = []string{auth.RoleAdmin, auth.RoleInvestigator}                    // faces, exports
	rolePlates = []string{auth.RoleAdmin, auth.RoleInvestigator, auth.RoleOperator} // plates, timelines
	roleAny    = auth.Roles
)

var (
	errUnauthorized = errors.New("unauthorized")
	errForbidden    = errors.New("forbidden")
)

type principalKey struct{}

// principalOf is the request's authenticated principal (nil when the API runs without auth).
func principalOf(r *http.Request) *auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(*auth.Principal)
	return p
}

// Route is one registered route and who may call it: Roles for bearer tokens, or Auth "signed"
// (a door controller's signed request) or "none" (health, metrics, the console's files).
type Route struct {
	Method, Path string
	Roles        []string
	Auth         string // bearer, signed, none
}

// public registers a route without a bearer token: auth says how it is protected instead
// ("signed": a door controller's signature, checked by the handler; "none").
func (s *Server) public(mux *http.ServeMux, pattern, auth string, h http.Handler) {
	s.addRoute(pattern, nil, auth)
	mux.Handle(pattern, h)
}

func (s *Server) addRoute(pattern string, roles []string, auth string) {
	method, path, _ := strings.Cut(pattern, " ")
	s.routes = append(s.routes, Route{Method: method, Path: path, Roles: roles, Auth: auth})
}

// Routes lists every route the API serves (the OpenAPI contract is checked against it).
func (s *Server) Routes() []Route { return s.routes }

// handle registers a route that only the given roles may use. A node without an Authenticator
// (no database) refuses every such route with 503, unless Deps.Open says it serves them openly.
func (s *Server) handle(mux *http.ServeMux, pattern string, roles []string, h http.HandlerFunc) {
	s.addRoute(pattern, roles, "bearer")
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if s.auth == nil {
			if s.open {
				h(w, r)
				return
			}
			s.writeError(w, r, errNoAuth)
			return
		}
		ip := s.callerKey(r)
		if s.tokenLimits.blocked(ip) { // guessing tokens: answered before any is looked up
			s.tooMany(w, r)
			return
		}
		token := bearer(r)
		if token == "" {
			s.writeError(w, r, errUnauthorized)
			return
		}
		p, err := s.auth.Authenticate(r.Context(), token)
		if errors.Is(err, auth.ErrUnauthorized) {
			s.tokenLimits.failed(ip)
			s.writeError(w, r, errUnauthorized)
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !slices.Contains(roles, p.Role) {
			s.writeError(w, r, forbidden{role: p.Role, allowed: roles})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// bearer reads the token from Authorization, or for GETs from access_token (EventSource, <img>
// and <video> cannot set headers).
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	if r.Method == http.MethodGet {
		return r.URL.Query().Get("access_token")
	}
	return ""
}

type forbidden struct {
	role    string
	allowed []string
}

func (f forbidden) Error() string {
	return "the " + f.role + " role may not do this; it needs " + strings.Join(f.allowed, " or ")
}

func (f forbidden) Is(err error) bool { return err == errForbidden }

// audit writes one entry for the request's principal (detail marshalled to JSON) and returns its
// seq. When the audit chain cannot be written it answers 503 itself and reports false: a search
// or export that is not audited is not answered.
func (s *Server) audit(w http.ResponseWriter, r *http.Request, action, reason string, detail any, results *int) (int64, bool) {
	if s.auditor == nil {
		return 0, true
	}
	d, _ := json.Marshal(detail)
	e := audit.Entry{Action: action, Reason: reason, Detail: d, Results: results, Actor: "anonymous", Role: "none"}
	if p := principalOf(r); p != nil {
		e.Actor, e.Role = p.Name, p.Role
	}
	seq, err := s.auditor.Append(r.Context(), e)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %v", errAuditUnavailable, err))
		return 0, false
	}
	return seq, true
}
