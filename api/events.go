package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// EventSource is what the API needs from the bus: live subscriptions.
type EventSource interface {
	Subscribe(subject string, fn func(subject string, data []byte)) (stop func(), error error)
}

// eventsSubject is the bus's subject prefix for events: vigil.events.<kind>.<camera>.
const eventsSubject = "vigil.events"

// snapshots keeps the best-shot JPEGs of recent events in memory, so live viewers can show them
// before the event store lands. Bounded: the oldest go first.
type snapshots struct {
	mu    sync.Mutex
	max   int
	order []string
	data  map[string][]byte
}

func newSnapshots(max int) *snapshots {
	return &snapshots{max: max, data: map[string][]byte{}}
}

func (s *snapshots) put(id string, jpeg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.data[id]; ok {
		return
	}
	s.data[id] = jpeg
	s.order = append(s.order, id)
	for len(s.order) > s.max {
		delete(s.data, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *snapshots) get(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.data[id]
	return b, ok
}

// liveView turns a bus event into what live viewers get: no embedding, and a URL instead of the
// snapshot bytes, which it keeps for that URL.
func (s *Server) liveView(data []byte) (id, kind string, out []byte, err error) {
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		return "", "", nil, err
	}
	id, _ = ev["id"].(string)
	kind, _ = ev["kind"].(string)
	if snap, ok := ev["snapshot"].(string); ok && id != "" {
		var b []byte
		if err := json.Unmarshal([]byte(`"`+snap+`"`), &b); err == nil {
			s.snaps.put(id, b)
			ev["snapshot_url"] = "/v1/events/" + id + "/snapshot"
		}
	}
	delete(ev, "snapshot")
	delete(ev, "embedding")
	delete(ev, "embedding_le")
	out, err = json.Marshal(ev)
	return id, kind, out, err
}

// collectSnapshots keeps snapshots of every event, whether or not anyone watches live.
func (s *Server) collectSnapshots() (func(), error) {
	return s.events.Subscribe(eventsSubject+".>", func(_ string, data []byte) {
		_, _, _, _ = s.liveView(data)
	})
}

// liveEvents streams events as Server-Sent Events. Filters: kind (face, plate), camera.
// A viewer that cannot keep up (64 events behind) is disconnected, never waited for.
func (s *Server) liveEvents(w http.ResponseWriter, r *http.Request) {
	if s.events == nil {
		s.writeError(w, r, errUnavailable)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, fmt.Errorf("streaming unsupported"))
		return
	}
	kind := r.URL.Query().Get("kind")
	camera := r.URL.Query().Get("camera")
	for _, v := range []string{kind, camera} {
		if strings.ContainsAny(v, ".*> \t") {
			s.writeError(w, r, badRequest("kind and camera may not contain '.', '*', '>' or spaces"))
			return
		}
	}
	subject := eventsSubject + "."
	if kind == "" {
		kind = "*"
	}
	if camera == "" {
		subject += kind + ".>"
	} else {
		subject += kind + "." + camera
	}
	ch := make(chan []byte, 64)
	overflow := make(chan struct{})
	var once sync.Once
	stop, err := s.events.Subscribe(subject, func(_ string, data []byte) {
		id, k, view, err := s.liveView(data)
		if err != nil {
			return
		}
		msg := []byte(fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", id, k, view))
		select {
		case ch <- msg:
		default:
			once.Do(func() { close(overflow) })
		}
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": vigil live events (%s)\n\n", subject)
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-overflow:
			fmt.Fprint(w, "event: overflow\ndata: {\"error\":\"viewer too slow; reconnect\"}\n\n")
			flusher.Flush()
			return
		case m := <-ch:
			if _, err := w.Write(m); err != nil {
				return
			}
			flusher.Flush()
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		}
	}
}
