package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/internal/core/quota"
)

// Work that costs much per request runs in slots: footage clips (disk and blob reads), search
// photos and door photos (decoding and three models each). A request waits for a slot at most
// slotWait, then is answered 503 with Retry-After; the node keeps its memory and CPU for the work
// it took on. Door photos have their own slots, so searches never take a door's.
const (
	clipSlots         = 12
	clipsPerPrincipal = 4 // a review plays up to 4 cameras in step; one token cannot hold every slot
	// stillsPerPrincipal bounds one principal's stills and clip starts at once (they run in
	// the clip slots too): a review asks where its 4 cameras' clips start, and a still or two
	// as the pointer moves.
	stillsPerPrincipal = 6
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

// share takes one of a principal's n places in owners for the request: release gives it back.
// ok false: answered 429 (the principal already holds n). Anonymous requests (no auth
// configured) are not counted.
func (s *Server) share(w http.ResponseWriter, r *http.Request, owners *quota.PerKey, n int, what string) (release func(), ok bool) {
	p := principalOf(r)
	if p == nil {
		return func() {}, true
	}
	key := strconv.FormatInt(p.ID, 10)
	if !owners.Take(key, n) {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": fmt.Sprintf("this principal already has %d %s under way; wait for one", n, what)})
		return nil, false
	}
	return func() { owners.Give(key) }, true
}

// progressWriter gives each write its own deadline, so a long answer goes on while the client
// keeps reading and ends when it stalls, and sends it at once; begin, when set, runs before the
// first byte (the headers go with the first piece, so an answer that fails before it is still a
// clean error).
type progressWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	window  time.Duration
	begin   func()
	started bool
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if !p.started {
		p.started = true
		if p.begin != nil {
			p.begin()
		}
	}
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.window))
	n, err := p.w.Write(b)
	if err == nil {
		err = p.rc.Flush() // each write is a whole piece (a clip's segment): the player gets all of it now
	}
	return n, err
}
