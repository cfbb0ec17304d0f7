package api

import (
	"net/http"
	"sync"
	"time"
)

// Work that costs much per request runs in slots: footage clips (disk and blob reads), search
// photos and door photos (decoding and three models each). A request waits for a slot at most
// slotWait, then is answered 503 with Retry-After; the node keeps its memory and CPU for the work
// it took on. Door photos have their own slots, so searches never take a door's.
const (
	clipSlots         = 4
	clipsPerPrincipal = 2 // so that one token cannot hold every clip slot
	// clipWriteWindow is how long one write of a clip (a segment's worth) may take: a client
	// reading slower than about a tenth of the video's bit rate is cut off, not waited for.
	clipWriteWindow  = 30 * time.Second
	searchPhotoSlots = 2
	doorPhotoSlots   = 4
	slotWait         = 10 * time.Second
)

// slot takes one of slots for the request: release gives it back. ok false: answered 503.
func (s *Server) slot(w http.ResponseWriter, r *http.Request, slots chan struct{}, what string) (release func(), ok bool) {
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, true
	case <-r.Context().Done():
		return nil, false
	case <-t.C:
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "this node is busy with " + what + "; try again shortly"})
		return nil, false
	}
}

// perKey counts what each key holds of something bounded: a principal's clips, an address's
// large bodies being read.
type perKey struct {
	mu   sync.Mutex
	held map[string]int
}

// take counts one for key; false when key already holds max.
func (p *perKey) take(key string, max int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = map[string]int{}
	}
	if p.held[key] >= max {
		return false
	}
	p.held[key]++
	return true
}

func (p *perKey) give(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[key]--; p.held[key] <= 0 {
		delete(p.held, key)
	}
}

// progressWriter gives each write its own deadline, so a long answer goes on while the client
// keeps reading and ends when it stalls.
type progressWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	window time.Duration
}

func (p *progressWriter) Header() http.Header  { return p.w.Header() }
func (p *progressWriter) WriteHeader(code int) { p.w.WriteHeader(code) }
func (p *progressWriter) Write(b []byte) (int, error) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.window))
	return p.w.Write(b)
}
