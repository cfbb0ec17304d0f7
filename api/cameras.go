package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/cameras"
	"github.com/vigil-oss/vigil/cluster"
	"github.com/vigil-oss/vigil/internal/core/privacy"
)

// CameraRegistry is the site's camera table (cameras.Registry).
type CameraRegistry interface {
	List(ctx context.Context) ([]cameras.Camera, error)
	Get(ctx context.Context, id string) (cameras.Camera, error)
	SetMasks(ctx context.Context, who auth.Actor, id string, m privacy.Masks, record bool) error
	Add(ctx context.Context, who auth.Actor, c cameras.Camera) error
	Update(ctx context.Context, who auth.Actor, c cameras.Camera) error
	Remove(ctx context.Context, who auth.Actor, id string) error
}

// cameraRoutes are the registry's: admins add, change and remove cameras at run time; every node
// starts or stops them within seconds.
func (s *Server) cameraRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/cameras/registry", roleAdmin, s.listRegistry)
	s.handle(mux, "POST /v1/cameras", roleAdmin, s.putCamera(true))
	s.handle(mux, "PUT /v1/cameras/{id}", roleAdmin, s.putCamera(false))
	s.handle(mux, "DELETE /v1/cameras/{id}", roleAdmin, s.removeCamera)
	s.handle(mux, "GET /v1/cameras/{id}/masks", roleWatch, s.getMasks)
	s.handle(mux, "PUT /v1/cameras/{id}/masks", roleAdmin, s.putMasks)
	s.handle(mux, "GET /v1/cluster", roleCluster, s.listCluster)
}

// registry is the node's camera registry, or an answer saying there is none.
func (s *Server) registry(w http.ResponseWriter, r *http.Request) bool {
	if s.cameraReg == nil {
		s.writeError(w, r, errNoStore)
		return false
	}
	return true
}

// listRegistry is GET /v1/cameras/registry: every registered camera, its URLs redacted.
func (s *Server) listRegistry(w http.ResponseWriter, r *http.Request) {
	if !s.registry(w, r) {
		return
	}
	list, err := s.cameraReg.List(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]cameras.Camera, len(list))
	for i, c := range list {
		out[i] = c.Redacted()
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

// putCamera is POST /v1/cameras (create) and PUT /v1/cameras/{id} (replace).
func (s *Server) putCamera(create bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.registry(w, r) {
			return
		}
		var c cameras.Camera
		if err := decodeJSON(w, r, &c); err != nil {
			s.writeError(w, r, err)
			return
		}
		var err error
		status := http.StatusCreated
		if create {
			err = s.cameraReg.Add(r.Context(), actor(r), c)
		} else {
			if c.ID != "" && c.ID != r.PathValue("id") {
				s.writeError(w, r, badRequest("the body's id differs from the path's"))
				return
			}
			c.ID, status = r.PathValue("id"), http.StatusOK
			err = s.cameraReg.Update(r.Context(), actor(r), c)
		}
		if s.cameraError(w, r, err) {
			return
		}
		_ = cameras.Check(&c)
		writeJSON(w, status, map[string]any{"camera": c.Redacted()})
	}
}

// removeCamera is DELETE /v1/cameras/{id}: the camera stops everywhere; its footage and events
// stay.
func (s *Server) removeCamera(w http.ResponseWriter, r *http.Request) {
	if !s.registry(w, r) {
		return
	}
	id := r.PathValue("id")
	if s.cameraError(w, r, s.cameraReg.Remove(r.Context(), actor(r), id)) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "removed": true})
}

// cameraError answers a registry error; it reports whether there was one.
func (s *Server) cameraError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, cameras.ErrInvalid):
		s.writeError(w, r, badRequest(err.Error()))
	case errors.Is(err, cameras.ErrExists):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case errors.Is(err, cameras.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	default:
		s.writeError(w, r, err)
	}
	return true
}

// Cluster is the site's nodes as this node sees them (cluster.Members).
type Cluster interface {
	Nodes(ctx context.Context) ([]cluster.Node, error)
	Self() cluster.Node
	// CameraStates is each node's camera statuses (a JSON list of rtsp.Status), by node id.
	CameraStates(ctx context.Context) (map[string]json.RawMessage, error)
}

// roleCluster may see the nodes of the site.
var roleCluster = []string{auth.RoleAdmin, auth.RoleOperator}

// listCluster is GET /v1/cluster: every live node (id, advertise URL, cameras held, capacity,
// last heartbeat, version) and which one answered.
func (s *Server) listCluster(w http.ResponseWriter, r *http.Request) {
	if s.cluster == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "this node has not joined a cluster"})
		return
	}
	nodes, err := s.cluster.Nodes(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"self": s.cluster.Self().ID, "nodes": nodes})
}

// masksOf is a camera's privacy masks: none when it is not registered (a camera of the
// configuration only, on a node without a database). An error when the registry cannot say:
// then nothing is shown or exported unmasked.
func (s *Server) masksOf(ctx context.Context, camera string) (privacy.Masks, error) {
	if s.cameraReg == nil {
		return nil, nil
	}
	c, err := s.cameraReg.Get(ctx, camera)
	if errors.Is(err, cameras.ErrNotFound) {
		return nil, nil
	}
	return c.Masks, err
}

// getMasks is GET /v1/cameras/{id}/masks: {"polygons": [[[x, y], …], …]}.
func (s *Server) getMasks(w http.ResponseWriter, r *http.Request) {
	if !s.registry(w, r) {
		return
	}
	c, err := s.cameraReg.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, cameras.ErrNotFound) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c.Masks == nil {
		c.Masks = privacy.Masks{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"camera": c.ID, "polygons": c.Masks, "record": c.MaskRecording})
}

// putMasks is PUT /v1/cameras/{id}/masks {"polygons": [[[x, y], …], …]} in fractions of the
// picture (at most 16 polygons of 3 to 64 points; [] removes them), audited with the polygons.
// Every node running the camera restarts its analysis with them within seconds.
func (s *Server) putMasks(w http.ResponseWriter, r *http.Request) {
	if !s.registry(w, r) {
		return
	}
	var req struct {
		Polygons *privacy.Masks `json:"polygons"`
		Record   bool           `json:"record"` // mask the recording itself too
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Polygons == nil {
		s.writeError(w, r, badRequest(`the body is {"polygons": [[[x, y], …], …]} ([] removes the masks)`))
		return
	}
	id := r.PathValue("id")
	err := s.cameraReg.SetMasks(r.Context(), actor(r), id, *req.Polygons, req.Record)
	switch {
	case errors.Is(err, cameras.ErrNotFound):
		s.writeError(w, r, errNotFound)
	case errors.Is(err, cameras.ErrInvalid):
		s.writeError(w, r, badRequest(err.Error()))
	case err != nil:
		s.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"camera": id, "polygons": *req.Polygons, "record": req.Record && len(*req.Polygons) > 0})
	}
}
