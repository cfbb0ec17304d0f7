// Package api owns vigil's HTTP surface: the REST API under /v1, health, and Prometheus
// metrics. Errors become HTTP statuses in exactly one place (writeError).
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-oss/vigil/access"
	liveview "github.com/vigil-oss/vigil/api/live"
	"github.com/vigil-oss/vigil/cameras"
	"github.com/vigil-oss/vigil/dispatch"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/internal/core/quota"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/footage"
	"github.com/vigil-oss/vigil/storage/strangers"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// Cameras is what the API needs from the camera pool.
type Cameras interface {
	Statuses() []rtsp.Status
}

// Server serves the API.
type Server struct {
	log    *slog.Logger
	cams   Cameras
	events EventSource
	store  EventStore
	blobs  Blobs
	clips  Footage
	snaps  *snapshots
	live   *live

	auth           Authenticator
	auditor        Auditor
	faces          FaceIndex
	faceSpace      space.Space
	cameraReg      CameraRegistry
	strangers      *strangers.Service
	analysis       func(camera string) *cameras.Analysis
	cluster        Cluster
	embedder       FaceEmbedder
	embeddings     Embeddings
	plates         PlateIndex
	cameraMap      map[string][2]float64
	exports        ExportStore
	plateEvents    PlateEvents
	access         *access.Engine
	nonces         *access.Nonces
	doorFaces      DoorFaces
	eraser         Eraser
	relay          *liveview.Relay
	roles          []string
	cameraOwner    func(ctx context.Context, camera string) (string, bool, error)
	dispatch       *dispatch.Service
	reg            *prometheus.Registry
	handler        http.Handler
	stop           func()
	routes         []Route
	doorLimits     *limits // controllers' signed calls
	residentLimits *limits // residents' remote opens and invitations, by person
	tokenLimits    *limits // bearer tokens, the metrics token
	proxies        []netip.Prefix
	streams        streamSet
	clipSlots      chan struct{}
	clipOwners     quota.PerKey // clips downloading, by principal
	stillOwners    quota.PerKey // stills and clip starts under way, by principal
	preview        func(ctx context.Context, camera string, at time.Time, width int, masks privacy.Masks) ([]byte, time.Time, error)
	previewMu      sync.Mutex
	previewAudit   map[string]time.Time // principal + camera → when its stills were last audited
	usageMu        sync.Mutex           // the recordings' usage, cached (recordingUsage)
	usage          map[string]footage.Usage
	usageAt        time.Time
	searchSlots    chan struct{}
	doorSlots      chan struct{}
	metricsTok     string
	open           bool
	auditPool      *pgxpool.Pool
	refusals       *prometheus.CounterVec
	streamsOpen    prometheus.Gauge // server-sent event streams open (pages that left must close theirs)
	throttled      prometheus.Counter
}

// Deps are what the API serves.
type Deps struct {
	Cameras Cameras
	Events  EventSource // nil: no live events
	Store   EventStore  // nil: no stored events
	Blobs   Blobs
	Footage Footage // nil: no recordings
	// Preview makes a still of a camera's recording: the key frame at or before a time, as a
	// JPEG, and when it was taken (cmd/vigil decodes it; nil: no stills).
	Preview  func(ctx context.Context, camera string, at time.Time, width int, masks privacy.Masks) ([]byte, time.Time, error)
	Registry *prometheus.Registry

	// Auth resolves bearer tokens; nil leaves every route open (a node without a database).
	Auth  Authenticator
	Audit Auditor // searches and exports are refused when it cannot be written
	// Search.
	Faces       FaceIndex
	FaceSpace   space.Space // the model of the face index and of Embedder (default space.DefaultSpace)
	Embedder    FaceEmbedder
	Embeddings  Embeddings
	Plates      PlateIndex
	PlateEvents PlateEvents
	Access      *access.Engine        // doors, people, credentials, decisions; nil: none
	DoorFaces   DoorFaces             // face decisions and enrolment
	Eraser      Eraser                // erasure of a person's face events
	CameraMap   map[string][2]float64 // camera → position on the site map
	// CameraRegistry is the site's camera table; nil without a database.
	CameraRegistry CameraRegistry
	// Analysis reports what this node's pipeline did with a camera's frames (nil: not analysed);
	// GET /v1/cameras shows it, so an operator sees which cameras are under-analysed.
	Analysis func(camera string) *cameras.Analysis
	// Cluster is the site's nodes.
	Cluster Cluster
	// CameraOwner is where a camera runs: the advertise URL of the node holding its lease, or
	// local when this node does (or nobody does). Nil: every camera is this node's.
	CameraOwner func(ctx context.Context, camera string) (advertise string, local bool, err error)
	// Roles are this node's (config.Cluster.Roles); empty: all. Without "api" it answers only
	// health, metrics and (with "doors") door controllers; without "doors", no controllers;
	// without "search" it passes searches to a node that has it.
	Roles []string
	// SharedNonces claims a controller request's nonce site-wide (cluster.Nonces.Claim): a
	// request replayed to another node is refused there too. Nil: this node's cache alone.
	SharedNonces func(key string) (fresh bool, err error)
	Exports      ExportStore        // case files; nil: no exports
	Live         *liveview.Relay    // WebRTC live view; nil: off
	Dispatch     *dispatch.Service  // alerts' acknowledgements and dispatches; nil: none
	Strangers    *strangers.Service // repeat strangers; nil: none
	// NotReady lists what keeps the node from being ready (GET /readyz); nil: always ready.
	NotReady func() []string
	// AuditPool is the database GET /v1/audit reads the audit chain from; nil: no review.
	AuditPool *pgxpool.Pool
	// MetricsToken, when set, is required on GET /metrics (Authorization: Bearer).
	MetricsToken string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the caller (throttling
	// counts the caller, not the proxy). Empty: the peer's own address counts.
	TrustedProxies []netip.Prefix
	// Open serves the API without tokens on a node without a database (tests, a bench of
	// cameras only). Without it, such a node refuses every API call: it cannot authenticate.
	Open bool
}

// New builds the API.
func New(d Deps, log *slog.Logger) (*Server, error) {
	s := &Server{log: log.With("component", "api"), cams: d.Cameras, reg: d.Registry, events: d.Events,
		store: d.Store, blobs: d.Blobs, clips: d.Footage, preview: d.Preview, previewAudit: map[string]time.Time{}, snaps: newSnapshots(2000),
		auth: d.Auth, auditor: d.Audit, faces: d.Faces, faceSpace: d.FaceSpace, embedder: d.Embedder, embeddings: d.Embeddings, plates: d.Plates, cameraMap: d.CameraMap, cameraReg: d.CameraRegistry, analysis: d.Analysis, cluster: d.Cluster, cameraOwner: d.CameraOwner, roles: d.Roles, exports: d.Exports, plateEvents: d.PlateEvents,
		access: d.Access, nonces: access.NewNonces(), doorFaces: d.DoorFaces, eraser: d.Eraser, relay: d.Live, dispatch: d.Dispatch, strangers: d.Strangers,
		doorLimits: newLimits(), tokenLimits: newLimits(), residentLimits: newResidentLimits(), proxies: d.TrustedProxies, clipSlots: make(chan struct{}, clipSlots), searchSlots: make(chan struct{}, searchPhotoSlots),
		doorSlots: make(chan struct{}, doorPhotoSlots), metricsTok: d.MetricsToken, open: d.Open, auditPool: d.AuditPool,
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_door_refusals_total",
			Help: "Controller requests refused before a decision, by reason (bad_signature, stale_timestamp, replayed_request, unknown_door)."}, []string{"reason"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_api_throttled_total",
			Help: "Requests answered 429: a caller over its rate, or failing too often (forged signatures, guessed tokens)."}),
		streamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_api_event_streams",
			Help: "Server-sent event streams open (live events, dispatches)."})}
	if d.Registry != nil {
		d.Registry.MustRegister(s.refusals, s.throttled, s.streamsOpen)
	}
	if d.SharedNonces != nil {
		var lastWarn atomic.Int64
		s.nonces.Share(d.SharedNonces, func(err error) {
			if now := time.Now().Unix(); now-lastWarn.Load() >= 60 {
				lastWarn.Store(now)
				s.log.Warn("site-wide nonce store unreachable: replays are refused on this node only until it is back", "err", err)
			}
		})
	}
	if s.events != nil {
		stop, err := s.startLive()
		if err != nil {
			return nil, err
		}
		s.stop = stop
	}
	reg := d.Registry
	mux := http.NewServeMux()
	s.routesLive(mux)
	s.routesConsole(mux)
	s.routesDispatch(mux)
	s.routesSensors(mux)
	s.routesVerdicts(mux)
	s.routesStrangers(mux)
	s.handle(mux, "GET /v1/stats", roleStats, s.stats)
	s.handle(mux, "GET /v1/events", roleWatch, s.listEvents)
	s.handle(mux, "GET /v1/events/{id}", roleWatch, s.getEvent)
	s.handle(mux, "GET /v1/events/live", roleWatch, s.liveEvents)
	s.handle(mux, "GET /v1/events/{id}/snapshot", roleWatch, s.snapshot)
	s.handle(mux, "GET /v1/cameras", roleWatch, s.listCameras)
	s.cameraRoutes(mux)
	s.handle(mux, "GET /v1/cameras/{id}", roleWatch, s.getCamera)
	s.handle(mux, "GET /v1/cameras/{id}/footage", roleWatch, s.footage)
	s.handle(mux, "GET /v1/cameras/{id}/footage/start", roleWatch, s.footageStart)
	s.handle(mux, "GET /v1/cameras/{id}/recordings", roleWatch, s.recordings)
	s.handle(mux, "GET /v1/cameras/{id}/preview", roleWatch, s.footagePreview)
	s.handle(mux, "POST /v1/search/faces", roleSearch, s.searchFaces)
	s.handle(mux, "GET /v1/search/plates", rolePlates, s.searchPlates)
	s.handle(mux, "GET /v1/search/timeline", rolePlates, s.timeline)
	s.handle(mux, "POST /v1/exports", roleSearch, s.createExport)
	s.doorRoutes(mux)
	s.peopleRoutes(mux)
	s.meRoutes(mux)
	s.auditRoutes(mux)
	s.handle(mux, "GET /v1/exports/{id}/files/{name}", roleSearch, s.exportFileGet)
	s.handle(mux, "GET /v1/exports/{id}/zip", roleSearch, s.exportZip)
	s.public(mux, "GET /healthz", "none", http.HandlerFunc(Healthz))
	s.public(mux, "GET /readyz", "none", ReadyHandler(d.NotReady))
	s.public(mux, "GET /metrics", "none", s.metricsHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	s.public(mux, "GET /v1/openapi.yaml", "none", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	}))
	s.handler = s.withRequestID(s.jsonErrors(mux))
	return s, nil
}

// OpenAPI is the API's contract (openapi.yaml), served at /v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// metricsHandler guards /metrics with http.metrics_token when one is set.
func (s *Server) metricsHandler(h http.Handler) http.Handler {
	if s.metricsTok == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := s.callerKey(r)
		if s.tokenLimits.blocked(ip) {
			s.tooMany(w, r)
			return
		}
		if subtle.ConstantTimeCompare([]byte(bearer(r)), []byte(s.metricsTok)) != 1 {
			s.tokenLimits.failed(ip)
			s.writeError(w, r, errUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Close ends the API's bus subscription (live events). Stop serving requests first.
func (s *Server) Close() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// Healthz is GET /healthz: the process is up (liveness).
func Healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ReadyHandler is GET /readyz: 200 when notReady lists nothing, else 503 naming what is not
// ready (a component still starting, a database that does not answer). Orchestrators and
// scripts wait on it before they send traffic.
func ReadyHandler(notReady func() []string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		var nr []string
		if notReady != nil {
			nr = notReady()
		}
		if len(nr) == 0 {
			writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "not_ready": nr})
	}
}

// jsonErrors answers unmatched paths and methods with the API's JSON error body instead of the
// mux's plain text, keeping its 404/405 decision and Allow header.
func (s *Server) jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			if why := s.notServedHere(pattern, r); why != "" {
				writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": why})
				return
			}
			mux.ServeHTTP(w, r) // ServeHTTP, not h, so path values are set
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if probe.status == http.StatusMethodNotAllowed {
			s.writeError(w, r, errMethod)
			return
		}
		s.writeError(w, r, errNotFound)
	})
}

// statusProbe records what the mux's fallback handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }

type ctxKey struct{}

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

var (
	errNotFound    = errors.New("not found")
	errMethod      = errors.New("method not allowed")
	errUnavailable = errors.New("unavailable")
	errTooMany     = errors.New("too many requests")
	errNoAuth      = errors.New("no database: this node cannot authenticate")
)

// badRequest is a client error whose message is safe to show.
type badRequest string

func (b badRequest) Error() string { return string(b) }

// writeError is the one place errors become statuses; clients get a message and the request id.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	msg := "internal error"
	var br badRequest
	switch {
	case errors.As(err, &br):
		status, msg = http.StatusBadRequest, string(br)
	case errors.Is(err, events.ErrBadCursor):
		status, msg = http.StatusBadRequest, "cursor is not one this server made"
	case errors.Is(err, errUnauthorized):
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
		status, msg = http.StatusUnauthorized, "a valid bearer token is required (vigil token create)"
	case errors.Is(err, errForbidden), errors.Is(err, errUnprocessable):
		status, msg = http.StatusForbidden, err.Error()
		if errors.Is(err, errUnprocessable) {
			status = http.StatusUnprocessableEntity
		}
	case errors.Is(err, errTooLarge):
		status, msg = http.StatusRequestEntityTooLarge, "the body is larger than this endpoint takes"
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			msg = fmt.Sprintf("the body is larger than the %d bytes this endpoint takes", mbe.Limit)
		}
	case errors.Is(err, errAuditUnavailable):
		status, msg = http.StatusServiceUnavailable, errAuditUnavailable.Error()
	case errors.Is(err, errUnavailable):
		status, msg = http.StatusServiceUnavailable, "live events are not available on this node"
	case errors.Is(err, errNoStore):
		status, msg = http.StatusServiceUnavailable, "this node keeps no event store"
	case errors.Is(err, errNoAuth):
		status, msg = http.StatusServiceUnavailable, "this node has no database, so it cannot check tokens: it serves no API call (use a node with the database)"
	case errors.Is(err, errTooMany):
		status, msg = http.StatusTooManyRequests, "too many requests, or too many failed ones, from this address; try again later"
	case errors.Is(err, errNotFound):
		status, msg = http.StatusNotFound, "not found: "+r.URL.Path
	case errors.Is(err, errMethod):
		status, msg = http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path
	}
	id, _ := r.Context().Value(ctxKey{}).(string)
	if status >= 500 {
		s.log.Error("request failed", "request_id", id, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, map[string]string{"error": msg, "request_id": id})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
