package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/dispatch"
	"github.com/vigil-oss/vigil/internal/core/event"
)

// routesSensors: the site's sensors (fire and smoke detectors, sprinklers, door contacts, panic
// buttons) on the map and the alert feed.
//
//	GET    /v1/sensors                     every sensor, its state and place       watch roles
//	GET    /v1/sensors/{id}                one                                     watch roles
//	POST   /v1/sensors                     {"id", "kind", "name"?, "map"?, "cameras"?, "heartbeat_s"?, "rotate_key"?}  admin
//	DELETE /v1/sensors/{id}                                                         admin
//	POST   /v1/sensors/{id}/events/{event} {"ts"?, "value"?} signed with the sensor's key (the webhook)
func (s *Server) routesSensors(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/sensors", roleWatch, s.listSensors)
	s.handle(mux, "GET /v1/sensors/{id}", roleWatch, s.getSensor)
	s.handle(mux, "POST /v1/sensors", roleAdmin, s.registerSensor)
	s.handle(mux, "DELETE /v1/sensors/{id}", roleAdmin, s.removeSensor)
	s.public(mux, "POST /v1/sensors/{id}/events/{event}", "signed", http.HandlerFunc(s.sensorWebhook))
}

func (s *Server) listSensors(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	all, err := s.dispatch.Sensors(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if all == nil {
		all = []dispatch.Sensor{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sensors": all, "kinds": dispatch.SensorKinds})
}

func (s *Server) getSensor(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	sn, err := s.dispatch.Sensor(r.Context(), r.PathValue("id"))
	if err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sn)
}

// registerSensor is POST /v1/sensors: 201 with the sensor, and its webhook key (hex) when it is
// new or the key was rotated; the key is shown this once.
func (s *Server) registerSensor(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	var spec dispatch.SensorSpec
	if err := decodeJSON(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	sn, key, err := s.dispatch.RegisterSensor(r.Context(), actor(r), spec)
	if err != nil {
		s.dispatchError(w, r, err)
		return
	}
	resp := map[string]any{"sensor": sn}
	if key != nil {
		resp["key"] = hex.EncodeToString(key)
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) removeSensor(w http.ResponseWriter, r *http.Request) {
	if !s.needDispatch(w, r) {
		return
	}
	if err := s.dispatch.RemoveSensor(r.Context(), actor(r), r.PathValue("id")); err != nil {
		s.dispatchError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sensorWebhook is a sensor's report over HTTP, for panels that cannot speak MQTT: signed like a
// door controller's request (X-Vigil-Timestamp, -Nonce, -Signature over the whole request) with
// the sensor's key. Refusals cost the caller's address like a controller's do.
func (s *Server) sensorWebhook(w http.ResponseWriter, r *http.Request) {
	if s.dispatch == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	ip := s.callerKey(r)
	if !s.doorLimits.allow(ip) {
		s.tooMany(w, r)
		return
	}
	refuse := func(status int, reason string) {
		s.refusals.WithLabelValues(reason).Inc()
		s.doorLimits.failed(ip)
		writeJSON(w, status, map[string]any{"error": reason})
	}
	ts, nonce, sig := r.Header.Get(access.HeaderTimestamp), r.Header.Get(access.HeaderNonce), r.Header.Get(access.HeaderSignature)
	now := time.Now()
	if err := access.CheckHeaders(ts, nonce, sig, now); err != nil {
		reason, _ := access.IsRequestError(err)
		refuse(http.StatusUnauthorized, reason)
		return
	}
	id := r.PathValue("id")
	key, err := s.dispatch.SensorKey(r.Context(), id)
	if errors.Is(err, dispatch.ErrNotFound) {
		refuse(http.StatusNotFound, "unknown_sensor")
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(now.Add(bodyDeadline))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, access.DenyBadBody)
		return
	}
	if err := s.nonces.Verify(&access.Door{ID: "sensor:" + id, Key: key}, r.Method, r.URL.Path, r.URL.RawQuery, ts, nonce, sig, body, now); err != nil {
		reason, _ := access.IsRequestError(err)
		refuse(http.StatusUnauthorized, reason)
		return
	}
	var msg dispatch.SensorMessage
	if len(body) > 0 && json.Unmarshal(body, &msg) != nil {
		s.writeError(w, r, badRequest(`the body is JSON: {"ts"?, "value"?}`))
		return
	}
	at := now
	if msg.TS != nil && msg.TS.Before(now) && now.Sub(*msg.TS) < time.Hour {
		at = *msg.TS
	}
	sn, err := s.dispatch.Report(r.Context(), id, r.PathValue("event"), msg.Value, at, event.NewID)
	if err != nil {
		s.dispatchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": sn.State, "alarm_event": sn.AlarmEvent})
}
