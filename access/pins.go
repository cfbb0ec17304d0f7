package access

import (
	"sync"
	"time"
)

// PINGuard locks PIN entry at a door after too many refused PINs: a 6-digit PIN is a million
// guesses, and a keypad that answers every one of them is a lock that opens by patience. Cards
// and faces still work at a locked door. vigil keeps one for every door; a controller deciding
// offline keeps its own (doorsim does).
//
// Every refused PIN counts, a real PIN refused by the rules included (keyed alone at a door that
// asks for card and PIN, outside its schedule): otherwise the refusal's reason would tell a
// guesser which PINs are real, at no cost.
type PINGuard struct {
	mu    sync.Mutex
	doors map[string]*pinState
}

type pinState struct {
	wrong       []time.Time // within pinWindow
	lockedUntil time.Time
}

const (
	pinAttempts = 5                // wrong PINs within pinWindow lock the keypad
	pinWindow   = 10 * time.Minute //
	pinLockout  = 10 * time.Minute // how long
)

// Locked reports whether door takes no PIN at now.
func (g *PINGuard) Locked(door string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.doors[door]
	return st != nil && now.Before(st.lockedUntil)
}

// Wrong counts a refused PIN at door; the pinAttempts-th within pinWindow locks it.
func (g *PINGuard) Wrong(door string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.doors == nil {
		g.doors = map[string]*pinState{}
	}
	st := g.doors[door]
	if st == nil {
		if len(g.doors) > 100000 {
			clear(g.doors)
		}
		st = &pinState{}
		g.doors[door] = st
	}
	keep := st.wrong[:0]
	for _, t := range st.wrong {
		if now.Sub(t) < pinWindow {
			keep = append(keep, t)
		}
	}
	st.wrong = append(keep, now)
	if len(st.wrong) >= pinAttempts {
		st.lockedUntil, st.wrong = now.Add(pinLockout), nil
	}
}
