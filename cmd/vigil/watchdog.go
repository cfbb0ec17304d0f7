package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/lifecycle"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// The camera watchdog turns a camera gone dark and a recording that stopped into alarms beside
// the face and plate alerts (stored, on the console's alert feed, dispatchable): once per outage,
// and again only after the camera or its recording came back.
const (
	watchEvery = time.Second
	// offlineAfter: a camera not live this long (once live, or since it was added) is offline.
	offlineAfter = 10 * time.Second
	// recordEvery is how often a camera's newest segment is read from the index (a query each;
	// a recording is late only after three segments and 30 s anyway).
	recordEvery = 15 * time.Second
)

type watchdog struct {
	offline  map[string]bool // alarms raised and not yet over
	stopped  map[string]bool
	seen     map[string]time.Time // when the watchdog first saw each camera
	lastLive map[string]time.Time // when each camera was last seen live (a reconnecting camera's state changes every try)
	recAsked map[string]time.Time // when each camera's newest segment was last read
	lastSeg  func(ctx context.Context, camera string) (time.Time, bool)
	segLen   time.Duration
	statuses func() []rtsp.Status
	raise    func(access.Alarm)
}

// check looks at every camera once.
func (w *watchdog) check(ctx context.Context, now time.Time) {
	for _, st := range w.statuses() {
		if _, ok := w.seen[st.ID]; !ok {
			w.seen[st.ID] = now
		}
		live := st.State == rtsp.StateLive
		if live {
			w.lastLive[st.ID] = now
		}
		since, ok := w.lastLive[st.ID]
		if !ok {
			since = w.seen[st.ID] // a node that just took the camera over knows only since then
		}
		switch {
		case live:
			w.offline[st.ID] = false
		case now.Sub(since) >= offlineAfter && !w.offline[st.ID]:
			w.offline[st.ID] = true
			w.raise(access.Alarm{Type: "camera_offline", Camera: st.ID, Time: now})
		}
		if w.lastSeg == nil || !live {
			continue
		}
		// Recording: a live camera's newest segment should be at most a few segments old.
		late := 3*w.segLen + 30*time.Second
		if now.Sub(st.Since) < late || now.Sub(w.seen[st.ID]) < late || now.Sub(w.recAsked[st.ID]) < recordEvery {
			continue // not live long enough to have recorded, or read lately
		}
		w.recAsked[st.ID] = now
		last, ok := w.lastSeg(ctx, st.ID)
		if !ok {
			continue // the index could not be read: say nothing rather than something wrong
		}
		switch {
		case now.Sub(last) <= late:
			w.stopped[st.ID] = false
		case !w.stopped[st.ID]:
			w.stopped[st.ID] = true
			w.raise(access.Alarm{Type: "recording_stopped", Camera: st.ID, Time: now})
		}
	}
}

// lastSegment is the start of a camera's newest segment (the zero time when it has none).
func lastSegment(pool *pgxpool.Pool) func(ctx context.Context, camera string) (time.Time, bool) {
	return func(ctx context.Context, camera string) (time.Time, bool) {
		var t *time.Time
		err := pool.QueryRow(ctx, `SELECT max(start_time) FROM segments WHERE camera = $1`, camera).Scan(&t)
		if err != nil {
			return time.Time{}, false
		}
		if t == nil {
			return time.Time{}, true
		}
		return *t, true
	}
}

// watchdogComponent runs the camera watchdog over this node's cameras.
func (n *node) watchdogComponent() lifecycle.Component {
	var stop context.CancelFunc
	done := make(chan struct{})
	return lifecycle.Component{Name: "watchdog", Start: func(context.Context) error {
		w := &watchdog{offline: map[string]bool{}, stopped: map[string]bool{}, seen: map[string]time.Time{}, lastLive: map[string]time.Time{}, recAsked: map[string]time.Time{},
			statuses: n.cameras.Statuses, raise: n.raiseAlarm, segLen: n.cfg.Footage.SegmentLength.D()}
		if n.cfg.Footage.Enabled && n.cfg.Footage.Mode != "events" && n.st != nil && n.st.pool != nil {
			w.lastSeg = lastSegment(n.st.pool)
		}
		var ctx context.Context
		ctx, stop = context.WithCancel(context.Background())
		go func() {
			defer close(done)
			t := time.NewTicker(watchEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					w.check(ctx, now)
				}
			}
		}()
		return nil
	}, Stop: func() {
		if stop != nil {
			stop()
			<-done
		}
	}}
}
