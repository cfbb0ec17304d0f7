package api

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/quota"
)

// limits throttles callers by address, with two token buckets each: every request spends from
// one, and every failure (a refused signature, an unknown door, a wrong token) from a far smaller
// one. An honest controller or console never fails, so only those guessing run dry: a flood of
// forged requests or tokens from one address is answered 429 before it costs a database row or
// a hash.
//
// The server keeps one limits for the controllers' signed calls and one for bearer tokens, so
// that a console guessing tokens behind a shared address (a NAT, a proxy) does not stop the doors
// behind it. IPv6 callers are counted by /64 (one host holds a whole /64); past maxCallers the
// callers that never failed are forgotten first, then the longest quiet, so rotating addresses
// cannot make the node forgive those it blocked.
type limits struct {
	mu      sync.Mutex
	callers map[string]*caller
	bodies  quota.PerKey // large bodies being read, by address
	swept   time.Time
	now     func() time.Time

	rate, burst         float64 // requests per second
	failRate, failBurst float64 // failures per second
	maxCallers          int
}

type caller struct {
	tokens, failTokens float64
	at                 time.Time
}

func newLimits() *limits {
	return &limits{callers: map[string]*caller{}, now: time.Now,
		rate: 200, burst: 400, failRate: 1, failBurst: 30, maxCallers: 100000}
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
		if len(l.callers) >= l.maxCallers {
			l.evict()
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

// evict forgets a quarter of the callers: those that never failed first, then the longest quiet.
// Held under l.mu.
func (l *limits) evict() {
	type entry struct {
		key    string
		failed bool
		at     time.Time
	}
	all := make([]entry, 0, len(l.callers))
	for k, c := range l.callers {
		all = append(all, entry{k, c.failTokens < l.failBurst, c.at})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if a.failed != b.failed {
			if a.failed {
				return 1
			}
			return -1
		}
		return a.at.Compare(b.at)
	})
	for _, e := range all[:len(all)/4+1] {
		delete(l.callers, e.key)
	}
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

// tooMany answers 429.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request) {
	s.throttled.Inc()
	w.Header().Set("Retry-After", "30")
	s.writeError(w, r, errTooMany)
}

// callerKey is who a request counts against: its address, an IPv6 one by its /64; behind a
// trusted proxy, the address the proxy names last in X-Forwarded-For that is not itself a trusted
// proxy.
func (s *Server) callerKey(r *http.Request) string {
	addr := peerAddr(r.RemoteAddr)
	if addr.IsValid() && s.trusted(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a forged or garbled hop: count the proxy's own address
			}
			addr = hop.Unmap()
			if !s.trusted(addr) {
				break
			}
		}
	}
	if !addr.IsValid() {
		return r.RemoteAddr
	}
	return quota.AddrKey(addr)
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is a RemoteAddr's address without its port.
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
