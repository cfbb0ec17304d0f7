package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// EventSource is what the API needs from the bus: live subscriptions.
type EventSource interface {
	Subscribe(subject string, fn func(subject string, data []byte)) (stop func(), error error)
}

// snapshots keeps the best-shot JPEGs of recent events in memory, so live viewers can show them
// before the event store lands. Bounded: the oldest go first.
type snapshots struct {
	mu     sync.Mutex
	max    int
	order  []string
	data   map[string][]byte
	person map[string]string // event id → the person it matched, for erasure
	// erased holds the people erased lately, and when: an event matched before the erasure and
	// heard after it (in flight in the pipeline) neither names them nor leaves a shot here.
	erased map[string]time.Time
}

// erasedFor is how long an erasure holds back late events of the person: far beyond the
// pipeline's latency.
const erasedFor = 10 * time.Minute

func newSnapshots(max int) *snapshots {
	return &snapshots{max: max, data: map[string][]byte{}, person: map[string]string{}, erased: map[string]time.Time{}}
}

// isErased reports whether person was erased within erasedFor.
func (s *snapshots) isErased(person string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.erased[person]
	return ok && time.Since(at) < erasedFor
}

func (s *snapshots) put(id, person string, jpeg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.data[id]; ok {
		return
	}
	if at, ok := s.erased[person]; ok && person != "" && time.Since(at) < erasedFor {
		return // erased while this event was on its way (checked here, under the same lock as forget)
	}
	s.data[id] = jpeg
	if person != "" {
		s.person[id] = person
	}
	s.order = append(s.order, id)
	for len(s.order) > s.max {
		delete(s.data, s.order[0])
		delete(s.person, s.order[0])
		s.order = s.order[1:]
	}
}

// forget drops a person's best shots and holds back late ones (erasure).
func (s *snapshots) forget(person string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for p, at := range s.erased {
		if now.Sub(at) >= erasedFor {
			delete(s.erased, p)
		}
	}
	s.erased[person] = now
	for id, p := range s.person {
		if p == person {
			delete(s.data, id)
			delete(s.person, id)
		}
	}
}

func (s *snapshots) get(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.data[id]
	return b, ok
}

// liveView turns a bus event into the SSE messages live viewers get, one per seeLevel: no
// embedding, and a URL instead of the snapshot bytes, which it keeps for that URL.
func (s *Server) liveView(data []byte) (*event.Event, [3][]byte, error) {
	var views [3][]byte
	e, err := event.Unpack(data)
	if err != nil {
		return nil, views, err
	}
	snapshotURL := ""
	if e.Match != nil && e.Match.PersonID != "" && s.snaps.isErased(e.Match.PersonID) {
		// Matched before the person's erasure, heard after it: it names nobody, keeps no shot.
		e.Match, e.Snapshot = &event.Match{List: e.Match.List}, nil
	}
	if len(e.Snapshot) > 0 {
		person := ""
		if e.Match != nil {
			person = e.Match.PersonID
		}
		s.snaps.put(e.ID, person, bytes.Clone(e.Snapshot))
		snapshotURL = "/v1/events/" + e.ID + "/snapshot"
	}
	view := *e
	view.Embedding, view.Snapshot = nil, nil
	// One message per level that sees something different (seeLevel): at most two for an
	// event; a level with nothing hidden from it shares the full one.
	for l := seeAll; l <= seeNoIdents; l++ {
		red := redactLive(view, l)
		if l > seeAll && red.Match == view.Match && red.Plate == view.Plate {
			views[l] = views[seeAll]
			continue
		}
		out, err := json.Marshal(struct {
			*event.Event
			SnapshotURL string `json:"snapshot_url,omitempty"`
		}{&red, snapshotURL})
		if err != nil {
			return nil, views, err
		}
		views[l] = fmt.Appendf(nil, "id: %s\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, out)
	}
	return e, views, nil
}

// live fans bus events out to SSE viewers: each event is decoded once, whatever the number of
// viewers, and its snapshot kept whether or not anyone watches.
type live struct {
	mu      sync.Mutex
	viewers map[*viewer]struct{}
}

// viewer is one SSE connection and its filters ("" matches all).
type viewer struct {
	kind, camera string
	level        seeLevel // what its principal may see
	ch           chan []byte
	overflow     chan struct{}
	once         sync.Once
}

func (l *live) add(v *viewer) {
	l.mu.Lock()
	l.viewers[v] = struct{}{}
	l.mu.Unlock()
}

func (l *live) remove(v *viewer) {
	l.mu.Lock()
	delete(l.viewers, v)
	l.mu.Unlock()
}

// send hands msg to every matching viewer without waiting: one that is full is told to go.
func (l *live) send(kind, camera string, msgs [3][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for v := range l.viewers {
		if (v.kind != "" && v.kind != kind) || (v.camera != "" && v.camera != camera) {
			continue
		}
		select {
		case v.ch <- msgs[v.level]:
		default:
			v.once.Do(func() { close(v.overflow) })
		}
	}
}

// startLive subscribes once to every event.
func (s *Server) startLive() (func(), error) {
	s.live = &live{viewers: map[*viewer]struct{}{}}
	return s.events.Subscribe(event.SubjectPrefix+".>", func(_ string, data []byte) {
		e, msgs, err := s.liveView(data)
		if err != nil {
			s.log.Debug("unreadable event on the bus", "err", err)
			return
		}
		s.live.send(e.Kind, e.Camera, msgs)
	})
}

// liveEvents streams events as Server-Sent Events. Filters: kind (face, plate, alarm), camera.
// A viewer that cannot keep up (64 events behind) is disconnected, never waited for.
func (s *Server) liveEvents(w http.ResponseWriter, r *http.Request) {
	if s.events == nil {
		s.writeError(w, r, errUnavailable)
		return
	}
	v := &viewer{kind: r.URL.Query().Get("kind"), camera: r.URL.Query().Get("camera"), level: levelOf(r),
		ch: make(chan []byte, 64), overflow: make(chan struct{})}
	if v.kind != "" && v.kind != event.KindFace && v.kind != event.KindPlate && v.kind != event.KindAlarm {
		s.writeError(w, r, badRequest("kind must be face, plate or alarm"))
		return
	}
	s.live.add(v)
	defer s.live.remove(v)
	streamSSE(s, w, r, fmt.Sprintf("vigil live events (kind %q, camera %q)", v.kind, v.camera), v.ch, v.overflow,
		func(m []byte) []byte { return m })
}

// streamSSE serves one server-sent event stream until the client goes: a banner comment, each
// message from c as frame writes it, a keepalive comment every 15 s, and an overflow event (then
// the end) when gone closes because the subscriber fell too far behind.
//
// A principal holds at most maxStreams streams at once, and a revoked one loses them at once.
func streamSSE[T any](s *Server, w http.ResponseWriter, r *http.Request, banner string, c <-chan T, gone <-chan struct{}, frame func(T) []byte) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, fmt.Errorf("streaming unsupported"))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if p := principalOf(r); p != nil {
		if !s.streams.add(p.ID, &cancel) {
			s.writeError(w, r, errTooMany)
			return
		}
		defer s.streams.remove(p.ID, &cancel)
		if s.auth != nil && s.auth.IsRevoked(p.ID) { // revoked between authentication and add
			s.writeError(w, r, errUnauthorized)
			return
		}
	}
	s.streamsOpen.Inc()
	defer s.streamsOpen.Dec()
	longLived(w, 0)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": %s\n\n", banner)
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gone:
			fmt.Fprint(w, "event: overflow\ndata: {\"error\":\"viewer too slow; reconnect\"}\n\n")
			flusher.Flush()
			return
		case m := <-c:
			if _, err := w.Write(frame(m)); err != nil {
				return
			}
			flusher.Flush()
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		}
	}
}

// maxStreams is how many event streams one principal may hold open at once.
const maxStreams = 8

// streamSet is every open event stream by principal, so that a revoked principal's are ended.
type streamSet struct {
	mu  sync.Mutex
	set map[int64]map[*context.CancelFunc]struct{}
}

func (ss *streamSet) add(principal int64, cancel *context.CancelFunc) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.set == nil {
		ss.set = map[int64]map[*context.CancelFunc]struct{}{}
	}
	m := ss.set[principal]
	if len(m) >= maxStreams {
		return false
	}
	if m == nil {
		m = map[*context.CancelFunc]struct{}{}
		ss.set[principal] = m
	}
	m[cancel] = struct{}{}
	return true
}

func (ss *streamSet) remove(principal int64, cancel *context.CancelFunc) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.set[principal], cancel)
	if len(ss.set[principal]) == 0 {
		delete(ss.set, principal)
	}
}

// end ends every stream of a principal; it returns how many.
func (ss *streamSet) end(principal int64) int {
	ss.mu.Lock()
	m := ss.set[principal]
	delete(ss.set, principal)
	ss.mu.Unlock()
	for c := range m {
		(*c)()
	}
	return len(m)
}

// Revoked ends a revoked principal's event streams and live views at once (auth.Principals
// tells every node through OnRevoke). It does not block its caller: closing peer connections
// takes a while.
func (s *Server) Revoked(principal int64) {
	n := s.streams.end(principal)
	go func() {
		if s.relay != nil {
			n += s.relay.CloseOwner(strconv.FormatInt(principal, 10))
		}
		if n > 0 {
			s.log.Info("revoked principal's live sessions ended", "principal", principal, "sessions", n)
		}
	}()
}
