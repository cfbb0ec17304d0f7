package api

import (
	"net/http"
	"time"
)

// Work that costs much per request runs in slots: footage clips (disk and blob reads), search
// photos and door photos (decoding and three models each). A request waits for a slot at most
// slotWait, then is answered 503 with Retry-After; the node keeps its memory and CPU for the work
// it took on. Door photos have their own slots, so searches never take a door's.
const (
	clipSlots        = 4
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
