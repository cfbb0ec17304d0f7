package live

import (
	"slices"
	"time"
)

// Admission control and overload shedding: watchLoad reads the viewers' signs once a second,
// refuses newcomers while the node is losing frames, and sheds the newest viewers while the
// relay's own frames keep waiting too long.

// maxLag is how long a live frame may wait in the relay before its viewer counts as suffering.
const maxLag = 200 * time.Millisecond

// shedAfter is how many seconds in a row the relay itself must be failing its viewers (more than
// a tenth of them with frames waiting over shedLag) before it sheds the newest ones: longer and
// worse than a crowd joining at once causes.
const (
	shedAfter = 5
	shedLag   = 500 * time.Millisecond
)

// shedCooldown is how long new viewers are refused after the relay shed some.
const shedCooldown = 30 * time.Second

// watchLoad is the relay's admission control and overload protection. Every second it looks at
// three signs that the node cannot carry more: its writers falling behind (more than 1% of the
// frames lost in the viewers' queues), and more than a tenth of the viewers suffering, either
// reporting over 5% of their packets lost in their last receiver report (the node's uplink or
// CPU is saturated, or their own network is poor) or their last frame having waited over maxLag
// in the relay (its CPU is). Any of them refuses new viewers (503) for the next 10 s, so that the
// viewers already watching keep their pictures instead of all of them degrading together.
//
// When the relay's own signs (its queues, or frames waiting over shedLag; not what viewers
// report, which a few poor networks could drive) persist for shedAfter seconds, refusing
// newcomers was not enough: the node sheds the newest twentieth of its viewers, again every
// shedAfter seconds while it lasts (ending sessions costs CPU too: shedding faster overshoots),
// and refuses newcomers for shedCooldown. The last admitted are the ones that tipped it over;
// those watching longest keep their pictures.
func (r *Relay) watchLoad() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastSent, lastDropped int64
	overloaded := 0
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		var sent, dropped int64
		suffering, veryLate, n := 0, 0, 0
		var all []*viewer
		r.mu.Lock()
		for _, v := range r.sessions {
			all = append(all, v)
			sent += v.sent.Load()
			dropped += v.dropped.Load()
			// Viewers in their first 5 s are left out: the GOP burst that starts them at once
			// may overflow their receive buffers, which says nothing about the node.
			if time.Since(v.offered) < 5*time.Second {
				continue
			}
			n++
			lag := time.Duration(v.lag.Load())
			if time.Since(time.Unix(0, v.lagAt.Load())) > 2*time.Second {
				lag = 0 // nothing written lately: the camera, not the relay, is quiet
			}
			if lag > shedLag {
				veryLate++
			}
			if lag > maxLag || v.lossFrac.Load() > 13 /* 5% */ {
				suffering++
			}
		}
		r.mu.Unlock()
		ds, dd := sent-lastSent, dropped-lastDropped
		lastSent, lastDropped = sent, dropped
		behind := ds >= 0 && dd > 0 && float64(dd) > 0.01*float64(ds+dd) // (negative: sessions ended)
		losing := n >= 10 && suffering*10 > n
		if behind || losing {
			if r.refuseUntil(time.Now().Add(10 * time.Second)) {
				r.log.Warn("live view at capacity: refusing new viewers for 10 s", "viewers", n, "queue_lost_frames", dd,
					"sent_frames", ds, "viewers_losing_or_late", suffering)
			}
		}
		if behind || (n >= 10 && veryLate*10 > n) {
			overloaded++
		} else {
			overloaded = 0
		}
		if overloaded >= shedAfter && !r.cfg.NoShed && len(all) > 0 {
			slices.SortFunc(all, func(a, b *viewer) int { return b.offered.Compare(a.offered) }) // newest first
			k := max(1, len(all)/20)
			r.log.Warn("live view overloaded: shedding the newest viewers", "shed", k, "viewers", len(all),
				"queue_lost_frames", dd, "viewers_late", veryLate)
			r.refuseUntil(time.Now().Add(shedCooldown)) // no newcomers while it recovers (before anyone is shed)
			for _, v := range all[:k] {
				go r.shed(v)
			}
			overloaded = 0 // the next shed only if it is still overloaded shedAfter seconds on
		}
	}
}

// refuseUntil makes the relay refuse new viewers until at least t, and reports whether it was
// accepting them until now. It only ever extends a refusal.
func (r *Relay) refuseUntil(t time.Time) (wasAccepting bool) {
	for {
		cur := r.busyUntil.Load()
		if cur >= t.UnixNano() {
			return false
		}
		if r.busyUntil.CompareAndSwap(cur, t.UnixNano()) {
			return cur < time.Now().UnixNano()
		}
	}
}
