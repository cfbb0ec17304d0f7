package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/streams/rtsp"
)

// siteCamera is one camera as GET /v1/cameras lists it: its stream's status and the node that
// runs it ("" while no node does: just added, or moving after its node died).
type siteCamera struct {
	rtsp.Status
	Node string `json:"node"`
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
			byID[st.ID] = siteCamera{Status: st, Node: self}
		}
	}
	if s.cluster != nil {
		states, err := s.cluster.CameraStates(ctx)
		if err != nil {
			s.log.Warn("other nodes' cameras not read; listing this node's", "err", err)
		}
		for node, raw := range states {
			var list []rtsp.Status
			if node == self || json.Unmarshal(raw, &list) != nil {
				continue
			}
			for _, st := range list {
				if _, ok := byID[st.ID]; !ok { // a camera moving: the node running it now wins
					byID[st.ID] = siteCamera{Status: st, Node: node}
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
	out := make([]siteCamera, 0, len(byID))
	for _, c := range byID {
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
	base, err := url.Parse(owner)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		s.log.Warn("camera's node has an unusable advertise URL", "camera", camera, "advertise", owner)
		return false
	}
	target := strings.TrimSuffix(owner, "/") + r.URL.Path
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
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
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the camera's node did not answer: " + err.Error(), "camera": camera})
		return true
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Location", "Link", "Retry-After"} {
		for _, v := range resp.Header.Values(h) {
			w.Header().Add(h, v)
		}
	}
	if n := resp.Header.Get("X-Vigil-Node"); n != "" {
		w.Header().Set("X-Vigil-Node", n)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	return true
}

// relayClient carries relayed requests between nodes; it never follows redirects.
var relayClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
