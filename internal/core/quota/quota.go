// Package quota holds the small counters that bound what one caller may hold at once: open
// connections per address, large bodies per address, clips per principal.
package quota

import (
	"net/netip"
	"sync"
)

// PerKey counts what each key holds of something bounded. The zero value is ready.
type PerKey struct {
	mu   sync.Mutex
	held map[string]int
}

// Take counts one for key; false (nothing counted) when key already holds max.
func (p *PerKey) Take(key string, max int) bool {
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

// Give ends what Take counted.
func (p *PerKey) Give(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[key]--; p.held[key] <= 0 {
		delete(p.held, key)
	}
}

// AddrKey is who an address counts as: an IPv4 address itself, an IPv6 one by its /64 (one host
// holds a whole /64 and may use any address in it).
func AddrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
