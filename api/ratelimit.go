package api

import (
	"net/http"
	"sync"
	"time"
)

// limits throttles callers by address, with two token buckets each: every request to the
// unauthenticated surfaces (controllers' signed calls, token checks) spends from one, and every
// failure (a refused signature, an unknown door, a wrong token) from a far smaller one. An honest
// controller or console never fails, so only those guessing run dry: a flood of forged requests
// or tokens from one address is answered 429 before it costs a database row or a hash.
type limits struct {
	mu      sync.Mutex
	callers map[string]*caller
	bodies  map[string]int // large bodies being read, by address
	swept   time.Time
	now     func() time.Time

	rate, burst         float64 // requests per second
	failRate, failBurst float64 // failures per second
}

type caller struct {
	tokens, failTokens float64
	at                 time.Time
}

func newLimits() *limits {
	return &limits{callers: map[string]*caller{}, bodies: map[string]int{}, now: time.Now,
		rate: 200, burst: 400, failRate: 1, failBurst: 30}
}

// get refills and returns ip's buckets; held under l.mu.
func (l *limits) get(ip string) *caller {
	now := l.now()
	if now.Sub(l.swept) > time.Minute { // forget callers whose buckets are full again
		for k, c := range l.callers {
			if now.Sub(c.at) > 2*time.Minute {
				delete(l.callers, k)
			}
		}
		l.swept = now
	}
	c := l.callers[ip]
	if c == nil {
		if len(l.callers) > 100000 { // a spoofing flood: start over rather than grow without bound
			clear(l.callers)
		}
		c = &caller{tokens: l.burst, failTokens: l.failBurst, at: now}
		l.callers[ip] = c
	}
	dt := now.Sub(c.at).Seconds()
	c.tokens = min(l.burst, c.tokens+dt*l.rate)
	c.failTokens = min(l.failBurst, c.failTokens+dt*l.failRate)
	c.at = now
	return c
}

// allow spends a request token; false when the caller is over its rate or has failed too often.
func (l *limits) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.get(ip)
	if c.tokens < 1 || c.failTokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// blocked reports whether the caller has failed too often lately (its failure bucket is dry).
func (l *limits) blocked(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(ip).failTokens < 1
}

// failed spends a failure token.
func (l *limits) failed(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.get(ip)
	c.failTokens = max(c.failTokens-1, 0)
}

// enterBody counts a large body being read from ip: false when ip already sends max.
func (l *limits) enterBody(ip string, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bodies[ip] >= max {
		return false
	}
	l.bodies[ip]++
	return true
}

// leaveBody ends what enterBody began.
func (l *limits) leaveBody(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bodies[ip]--; l.bodies[ip] <= 0 {
		delete(l.bodies, ip)
	}
}

// tooMany answers 429.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request) {
	s.throttled.Inc()
	w.Header().Set("Retry-After", "30")
	s.writeError(w, r, errTooMany)
}
