// Package api owns vigil's HTTP surface: the REST API under /v1, health, and Prometheus
// metrics. Errors become HTTP statuses in exactly one place (writeError).
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-oss/vigil/streams/rtsp"
)

// Cameras is what the API needs from the camera pool.
type Cameras interface {
	Statuses() []rtsp.Status
}

// Server serves the API.
type Server struct {
	log     *slog.Logger
	cams    Cameras
	reg     *prometheus.Registry
	handler http.Handler
}

// New builds the API over cams, exporting reg on /metrics.
func New(cams Cameras, reg *prometheus.Registry, log *slog.Logger) *Server {
	s := &Server{log: log.With("component", "api"), cams: cams, reg: reg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cameras", s.listCameras)
	mux.HandleFunc("GET /v1/cameras/{id}", s.getCamera)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.handler = s.withRequestID(s.jsonErrors(mux))
	return s
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on ln until ctx ends, then drains for up to 5 s.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}

// jsonErrors answers unmatched paths and methods with the API's JSON error body instead of the
// mux's plain text, keeping its 404/405 decision and Allow header.
func (s *Server) jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
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

func (s *Server) listCameras(w http.ResponseWriter, _ *http.Request) {
	list := s.cams.Statuses()
	if list == nil {
		list = []rtsp.Status{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": list})
}

func (s *Server) getCamera(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, st := range s.cams.Statuses() {
		if st.ID == id {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
	s.writeError(w, r, errNotFound)
}

var (
	errNotFound = errors.New("not found")
	errMethod   = errors.New("method not allowed")
)

// writeError is the one place errors become statuses; clients get a message and the request id.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	msg := "internal error"
	switch {
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
