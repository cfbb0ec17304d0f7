package access

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// AccessList is the gallery list the enrolled residents' face templates are matched in
// (pipeline.Gallery.FollowTemplates): the only list whose matches open doors.
const AccessList = "access"

// Subscriber delivers bus messages (bus.Bus).
type Subscriber interface {
	Subscribe(subject string, fn func(subject string, data []byte)) (stop func(), err error)
}

// FollowFaces connects recognition to the doors: a face event naming an enrolled person at a
// door's camera is decided like any credential (AutoUnlock), and a grant queues an unlock for
// that door's controller. One decision per person and door within 10 s: a passage publishes
// early, then its final event. Decisions run with ctx.
//
// mine, when not nil, says which cameras' events this node decides (the site's nodes all see
// every event; each door decision is made once, by the node mine picks).
func (e *Engine) FollowFaces(ctx context.Context, sub Subscriber, log *slog.Logger, mine func(camera string) bool) (stop func(), err error) {
	log = log.With("component", "auto-unlock")
	recent := newRecently(10 * time.Second)
	return sub.Subscribe(event.SubjectPrefix+"."+event.KindFace+".>", func(_ string, data []byte) {
		ev, err := event.Unpack(data)
		// Only a match against the enrolled access templates opens doors: a watch-list or gallery
		// entry that happens to share a resident's id must not.
		if err != nil || ev.Match == nil || ev.Match.PersonID == "" || ev.Match.List != AccessList {
			return
		}
		if len(e.DoorsWithCamera(ev.Camera)) == 0 || mine != nil && !mine(ev.Camera) {
			return
		}
		for _, door := range e.DoorsWithCamera(ev.Camera) {
			if !recent.first(door, ev.Match.PersonID) {
				continue
			}
			model := ev.Model
			if model == "" && len(ev.Embedding) > 0 {
				model = "dlib-v1" // events from before spaces were named
			}
			d, err := e.AutoUnlock(ctx, door, CameraFace{Person: ev.Match.PersonID, Votes: ev.Match.Votes, Liveness: ev.Liveness,
				Embedding: ev.Vector(), Model: model}, ev.ID, ev.Arrival)
			if err != nil {
				log.Error("auto-unlock failed", "door", door, "err", err)
				continue
			}
			log.Info("door decision from its camera", "door", door, "person", ev.Match.PersonID, "grant", d.Grant, "reason", d.Reason)
		}
	})
}

// recently remembers (door, who) pairs decided within a window: one decision per person or
// plate and door per passage (a passage publishes early, then its final event).
type recently struct {
	mu     sync.Mutex
	window time.Duration
	at     map[[2]string]time.Time
}

func newRecently(window time.Duration) *recently {
	return &recently{window: window, at: map[[2]string]time.Time{}}
}

// first reports whether (door, who) was not decided within the window, and marks it decided.
func (r *recently) first(door, who string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{door, who}
	if time.Since(r.at[k]) < r.window {
		return false
	}
	if len(r.at) > 10000 {
		clear(r.at)
	}
	r.at[k] = time.Now()
	return true
}
