package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/cameras"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/storage/footage"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// siteCamera is one camera as GET /v1/cameras lists it: its stream's status and the node that
// runs it ("" while no node does: just added, or moving after its node died).
type siteCamera struct {
	rtsp.Status
	Node     string            `json:"node"`
	Analysis *cameras.Analysis `json:"analysis,omitempty"`
	// Recording is what the camera's recording holds (all nodes' segments; refreshed at most
	// every usageTTL), absent where nothing records.
	Recording *footage.Usage `json:"recording,omitempty"`
}

// usageTTL is how long the recordings' usage is cached: summing the segments index is one pass
// over it, too much for every camera list.
const usageTTL = 30 * time.Second

// recordingUsage is every camera's recording usage, cached for usageTTL.
func (s *Server) recordingUsage(ctx context.Context) map[string]footage.Usage {
	if s.clips == nil {
		return nil
	}
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	ttl := usageTTL
	if len(s.usage) == 0 {
		ttl = usageTTL / 6 // nothing recorded yet (a node just started): look again soon
	}
	if time.Since(s.usageAt) < ttl {
		return s.usage
	}
	u, err := s.clips.Usage(ctx)
	if err != nil {
		s.log.Warn("recordings' usage not read", "err", err)
		return s.usage
	}
	s.usage, s.usageAt = u, time.Now()
	return u
}

// StateUnplaced is the state of a registered camera no node runs at the moment.
const StateUnplaced = "unplaced"

// listCameras is GET /v1/cameras: every camera of the site with the node that runs it, on any
// node. This node's cameras are read now; the others' as their nodes last reported them (every
// 2 s, with their heartbeats).
func (s *Server) listCameras(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"cameras": s.siteCameras(r.Context())})
}

func (s *Server) getCamera(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, c := range s.siteCameras(r.Context()) {
		if c.ID == id {
			writeJSON(w, http.StatusOK, c)
			return
		}
	}
	s.writeError(w, r, errNotFound)
}

func (s *Server) siteCameras(ctx context.Context) []siteCamera {
	self := ""
	if s.cluster != nil {
		self = s.cluster.Self().ID
	}
	byID := map[string]siteCamera{}
	if s.cams != nil {
		for _, st := range s.cams.Statuses() {
			c := siteCamera{Status: st, Node: self}
			if s.analysis != nil {
				c.Analysis = s.analysis(st.ID)
			}
			byID[st.ID] = c
		}
	}
	if s.cluster != nil {
		states, err := s.cluster.CameraStates(ctx)
		if err != nil {
			s.log.Warn("other nodes' cameras not read; listing this node's", "err", err)
		}
		for node, raw := range states {
			var list []cameras.State
			if node == self || json.Unmarshal(raw, &list) != nil {
				continue
			}
			for _, st := range list {
				if _, ok := byID[st.ID]; !ok { // a camera moving: the node running it now wins
					byID[st.ID] = siteCamera{Status: st.Status, Node: node, Analysis: st.Analysis}
				}
			}
		}
	}
	if s.cameraReg != nil {
		if reg, err := s.cameraReg.List(ctx); err == nil {
			registered := map[string]bool{}
			for _, c := range reg {
				registered[c.ID] = true
				if _, ok := byID[c.ID]; !ok {
					byID[c.ID] = siteCamera{Status: rtsp.Status{ID: c.ID, URL: c.Redacted().URL, State: StateUnplaced}}
				}
			}
			for id, c := range byID { // removed from the registry, still stopping somewhere
				if !registered[id] && c.Node != self {
					delete(byID, id)
				}
			}
		}
	}
	usage := s.recordingUsage(ctx)
	out := make([]siteCamera, 0, len(byID))
	for id, c := range byID {
		if u, ok := usage[id]; ok {
			c.Recording = &u
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// relayedHeader marks a request one node passed to another: it is never passed on again.
const relayedHeader = "X-Vigil-Relayed-By"

// relayToOwner passes a live-view request for a camera another node runs to that node and
// copies its answer back: a browser pointed at any node plays any camera (the media then flows
// between the browser and the owner). It reports whether it answered.
//
// A relay rather than a 307: browsers drop the Authorization header when a fetch follows a
// redirect to another origin, so a redirected WHEP offer would arrive without its token.
func (s *Server) relayToOwner(w http.ResponseWriter, r *http.Request, camera string, body []byte) bool {
	if s.cameraOwner == nil || r.Header.Get(relayedHeader) != "" {
		return false
	}
	owner, local, err := s.cameraOwner(r.Context(), camera)
	if err != nil || local || owner == "" {
		return false
	}
	s.relayTo(w, r, owner, body, "the camera's node")
	return true
}

// relayTo sends the request to another node of the site (base, its advertise URL) with the
// caller's token, marked as relayed, and copies the answer back.
func (s *Server) relayTo(w http.ResponseWriter, r *http.Request, base string, body []byte, what string) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		s.log.Warn("a node has an unusable advertise URL", "advertise", base)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": what + " has an unusable advertise URL"})
		return
	}
	target := strings.TrimSuffix(base, "/") + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, r.Method, target, bytes.NewReader(body))
	for _, h := range []string{"Authorization", "Content-Type", "Accept"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	self := "node"
	if s.cluster != nil {
		self = s.cluster.Self().ID
	}
	req.Header.Set(relayedHeader, self)
	resp, err := relayClient.Do(req)
	if err != nil {
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": what + " did not answer: " + err.Error()})
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Location", "Link", "Retry-After", "X-Vigil-Node"} {
		for _, v := range resp.Header.Values(h) {
			w.Header().Add(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 64<<20))
}

// relayClient carries relayed requests between nodes; it never follows redirects.
var relayClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// has reports whether this node has role (every role when none are configured).
func (s *Server) has(role string) bool {
	return len(s.roles) == 0 || slices.Contains(s.roles, role)
}

// controllerPaths are the door controllers' endpoints (the doors role).
var controllerPaths = map[string]bool{"/v1/doors/{id}/decisions": true, "/v1/doors/{id}/commands": true,
	"/v1/doors/{id}/credentials": true, "/v1/doors/{id}/offline-decisions": true}

// relayable are the routes another node passes on to this one (searches, live views): served
// for a relayed request whatever this node's roles. Roles place work; they are not a security
// boundary (every request is authenticated all the same).
var relayable = map[string]bool{"/v1/search/faces": true, "/v1/search/plates": true, "/v1/live/{camera}/whep": true,
	"/v1/live/{camera}/whep/{session}": true}

// notServedHere says why this node's roles do not serve a route ("" when they do).
func (s *Server) notServedHere(pattern string, r *http.Request) string {
	_, path, _ := strings.Cut(pattern, " ")
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/v1/openapi.yaml":
		return ""
	case relayable[path] && r.Header.Get(relayedHeader) != "":
		return ""
	case controllerPaths[path]:
		if !s.has(config.RoleDoors) {
			return "this node does not serve door controllers (cluster.roles): point the controller at a node with the doors role"
		}
		return ""
	case !s.has(config.RoleAPI):
		return "this node does not serve the API (cluster.roles): use a node with the api role"
	}
	return ""
}

// relayToRole passes a request this node cannot answer (its roles lack role) to a live node
// that can, with the caller's token, and copies the answer back. It reports whether it
// answered.
func (s *Server) relayToRole(w http.ResponseWriter, r *http.Request, role string) bool {
	if s.cluster == nil || r.Header.Get(relayedHeader) != "" || s.has(role) {
		return false
	}
	nodes, err := s.cluster.Nodes(r.Context())
	if err != nil {
		return false
	}
	self := s.cluster.Self().ID
	var with []string
	for _, n := range nodes {
		if n.ID != self && !n.Leaving && n.Has(role) {
			with = append(with, n.Advertise)
		}
	}
	if len(with) == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no node of the site has the " + role + " role now"})
		return true
	}
	var body []byte
	if r.Body != nil {
		if body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20)); err != nil {
			s.writeError(w, r, uploadError(err))
			return true
		}
	}
	s.relayTo(w, r, with[rand.IntN(len(with))], body, "the "+role+" node")
	return true
}
