package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/access/audit"
)

// CachedCredential is one credential a controller keeps for deciding while vigil is unreachable:
// a keyed hash of the secret only, and the window in which it may open the door (the
// credential's validity cut to the lease that gives the right).
type CachedCredential struct {
	ID   string `json:"id"` // of this entry's content: any change makes it a new entry
	Kind string `json:"kind"`
	// Hash names the secret: CacheHash under the door's own key (Alg "door"), or, for a
	// credential stored before keyed hashing, hex SHA-256 of "kind:value" (Alg "sha256").
	Hash     string       `json:"hash"`
	Alg      string       `json:"alg"`
	PersonID string       `json:"person_id"`
	Duress   bool         `json:"duress,omitempty"`
	From     *time.Time   `json:"from,omitempty"`
	Until    *time.Time   `json:"until,omitempty"`
	Schedule *RawSchedule `json:"schedule,omitempty"`
}

// RawSchedule is a schedule as stored (see ParseSchedule).
type RawSchedule struct {
	Weekly   json.RawMessage `json:"weekly"`
	Holidays json.RawMessage `json:"holidays"`
	TZ       string          `json:"tz"`
}

// DoorCache is what GET /v1/doors/{id}/credentials returns: the whole set (Full), or the changes
// since the version the controller holds: entries Added and the IDs of entries Removed.
type DoorCache struct {
	Door        string             `json:"door"`
	Version     int64              `json:"version"` // changes whenever anything a decision reads changes
	Base        int64              `json:"base"`    // the version the changes apply to (the request's since); 0 with a full set
	FailMode    string             `json:"fail_mode"`
	PulseMS     int                `json:"pulse_ms"`
	Unchanged   bool               `json:"unchanged,omitempty"`
	Full        bool               `json:"full,omitempty"`
	Credentials []CachedCredential `json:"credentials,omitempty"` // the set when Full, else the entries added
	Removed     []string           `json:"removed,omitempty"`
}

// cacheHistory keeps each door's last few credential sets by version, so that a controller that
// holds one of them is sent only the difference.
type cacheHistory struct {
	mu   sync.Mutex
	sets map[string][]versionSet // by door, oldest first
}

type versionSet struct {
	version int64
	byID    map[string]CachedCredential
}

const cacheVersionsKept = 4

func (h *cacheHistory) get(door string, version int64) map[string]CachedCredential {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, vs := range h.sets[door] {
		if vs.version == version {
			return vs.byID
		}
	}
	return nil
}

func (h *cacheHistory) put(door string, version int64, byID map[string]CachedCredential) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sets == nil {
		h.sets = map[string][]versionSet{}
	}
	l := h.sets[door]
	for _, vs := range l {
		if vs.version == version {
			return
		}
	}
	l = append(l, versionSet{version, byID})
	if len(l) > cacheVersionsKept {
		l = l[len(l)-cacheVersionsKept:]
	}
	h.sets[door] = l
}

// hashes is every credential hash of the door's kept sets.
func (h *cacheHistory) hashes(door string) map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for _, vs := range h.sets[door] {
		for _, cc := range vs.byID {
			out[cc.Hash] = true
		}
	}
	return out
}

// Cache answers a controller that holds version since of its door's offline credential set:
// Unchanged when it is current, the changes when vigil still knows that version (it keeps each
// door's last few), else the whole set.
func (e *Engine) Cache(ctx context.Context, door string, since int64) (*DoorCache, error) {
	e.mu.RLock()
	s, version := e.snap, e.version
	e.mu.RUnlock()
	d := s.doors[door]
	if d == nil {
		return nil, fmt.Errorf("%w: no door %q", ErrInvalid, door)
	}
	c := &DoorCache{Door: door, Version: version, FailMode: d.FailMode, PulseMS: d.PulseMS}
	if since == version {
		c.Unchanged = true
		return c, nil
	}
	cur := e.hist.get(door, version)
	if cur == nil {
		set, err := e.doorSet(ctx, door, s)
		if err != nil {
			return nil, err
		}
		cur = make(map[string]CachedCredential, len(set))
		for _, cc := range set {
			cur[cc.ID] = cc
		}
		e.hist.put(door, version, cur)
	}
	old := map[string]CachedCredential(nil)
	if since != 0 {
		old = e.hist.get(door, since)
	}
	if old != nil {
		c.Base = since
	}
	if old == nil {
		c.Full = true
		for _, cc := range cur {
			c.Credentials = append(c.Credentials, cc)
		}
		return c, nil
	}
	for id, cc := range cur {
		if _, ok := old[id]; !ok {
			c.Credentials = append(c.Credentials, cc)
		}
	}
	for id := range old {
		if _, ok := cur[id]; !ok {
			c.Removed = append(c.Removed, id)
		}
	}
	return c, nil
}

// doorSet computes a door's offline credential set from the snapshot and the door's rules.
func (e *Engine) doorSet(ctx context.Context, door string, s *snapshot) ([]CachedCredential, error) {
	var out []CachedCredential
	// Raw schedules, for the controller to evaluate offline.
	raw := map[string]*RawSchedule{}
	rows, err := e.pool.Query(ctx, `SELECT s.id, s.weekly, s.holidays, s.tz FROM schedules s JOIN rules r ON r.schedule_id = s.id WHERE r.door_id = $1`, door)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var rs RawSchedule
		var w, h []byte
		if err := rows.Scan(&id, &w, &h, &rs.TZ); err != nil {
			rows.Close()
			return nil, err
		}
		rs.Weekly, rs.Holidays = w, h
		raw[id] = &rs
	}
	rows.Close()
	// A rule that asks for a card and its holder's PIN is left out of the cache: the controller's
	// cache decides one credential at a time, and a card alone must not open such a door while
	// vigil is away (it stays shut to that rule until vigil is back).
	rows, err = e.pool.Query(ctx, `SELECT who_kind, who, coalesce(schedule_id, '') FROM rules WHERE door_id = $1 AND factors = ''`, door)
	if err != nil {
		return nil, err
	}
	type grant struct {
		from, until *time.Time
		sched       string
	}
	byPerson := map[string][]grant{}
	for rows.Next() {
		var kind, who, sched string
		if err := rows.Scan(&kind, &who, &sched); err != nil {
			rows.Close()
			return nil, err
		}
		for _, p := range s.named(kind, who) {
			if p.blacklisted {
				continue
			}
			switch {
			case kind == "person" && who == p.id, kind == "kind" && who == p.kind, kind == "group" && p.groups[who]:
				for _, w := range p.leaseWindows() { // a resident's rights end with their leases
					byPerson[p.id] = append(byPerson[p.id], grant{from: w.from, until: w.until, sched: sched})
				}
			case kind == "unit":
				for _, l := range p.leases {
					if l.unit == who {
						from, until := l.starts, l.ends
						byPerson[p.id] = append(byPerson[p.id], grant{from: &from, until: &until, sched: sched})
					}
				}
			}
		}
	}
	rows.Close()
	// Visitors: their invitations to this door, within the window and their host's leases.
	for visitor, vs := range s.visits {
		for _, v := range vs {
			sp := s.people[v.sponsor]
			if !slices.Contains(v.doors, door) || sp == nil || sp.blacklisted || s.ruleFor(door, sp) != "" {
				continue
			}
			for _, w := range sp.leaseWindows() {
				from, until := later(&v.starts, w.from), earlier(&v.ends, w.until)
				if until.After(*from) {
					byPerson[visitor] = append(byPerson[visitor], grant{from: from, until: until})
				}
			}
		}
	}
	d := s.doors[door]
	if d == nil { // removed while its cache was being made
		return nil, fmt.Errorf("access: door %q is gone", door)
	}
	doorKey := d.Key
	for key, cred := range s.creds {
		if len(byPerson[cred.person]) == 0 {
			continue
		}
		hash, alg := hex.EncodeToString(key[:]), "sha256"
		if cred.enc != nil {
			kind, value, err := e.secrets.open(cred.enc)
			if err != nil {
				return nil, err
			}
			hash, alg = CacheHash(doorKey, kind, value), "door"
		}
		for _, g := range byPerson[cred.person] {
			cc := CachedCredential{Hash: hash, Alg: alg, Kind: cred.kind, PersonID: cred.person, Duress: cred.duress,
				From: later(cred.validFrom, g.from), Until: earlier(cred.until, g.until)}
			if g.sched != "" {
				cc.Schedule = raw[g.sched]
			}
			b, _ := json.Marshal(cc)
			sum := sha256.Sum256(b)
			cc.ID = hex.EncodeToString(sum[:12])
			out = append(out, cc)
		}
	}
	return out, nil
}

// peopleIndex finds the people a rule names without walking everyone: by unit (any lease),
// kind and group. Built once per snapshot, on first use.
type peopleIndex struct {
	byUnit, byKind, byGroup map[string][]*person
}

// named lists the people a rule of kind naming who may be about (the rule decides the rest).
func (s *snapshot) named(kind, who string) []*person {
	s.indexOnce.Do(func() {
		ix := peopleIndex{byUnit: map[string][]*person{}, byKind: map[string][]*person{}, byGroup: map[string][]*person{}}
		for _, p := range s.people {
			ix.byKind[p.kind] = append(ix.byKind[p.kind], p)
			for g := range p.groups {
				ix.byGroup[g] = append(ix.byGroup[g], p)
			}
			seen := map[string]bool{}
			for _, l := range p.leases {
				if !seen[l.unit] {
					seen[l.unit] = true
					ix.byUnit[l.unit] = append(ix.byUnit[l.unit], p)
				}
			}
		}
		s.index = ix
	})
	switch kind {
	case "person":
		if p := s.people[who]; p != nil {
			return []*person{p}
		}
	case "kind":
		return s.index.byKind[who]
	case "group":
		return s.index.byGroup[who]
	case "unit":
		return s.index.byUnit[who]
	}
	return nil
}

// window is a span of time; nil ends are open.
type window struct{ from, until *time.Time }

// leaseWindows are the spans in which a person's rights hold: a resident's leases, or always
// (one open window) for anyone else and for residents registered without a lease.
func (p *person) leaseWindows() []window {
	if p.kind != "resident" || len(p.leases) == 0 {
		return []window{{}}
	}
	ws := make([]window, len(p.leases))
	for i, l := range p.leases {
		ws[i] = window{from: &l.starts, until: &l.ends}
	}
	return ws
}

func later(a, b *time.Time) *time.Time {
	if a == nil || b != nil && b.After(*a) {
		return b
	}
	return a
}

func earlier(a, b *time.Time) *time.Time {
	if a == nil || b != nil && b.Before(*a) {
		return b
	}
	return a
}

// OfflineDecision is a decision a controller made from its cache while vigil was unreachable.
type OfflineDecision struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Hash     string    `json:"hash"` // what was presented, as the door's cache names it (CachedCredential.Hash)
	PersonID string    `json:"person_id,omitempty"`
	Grant    bool      `json:"grant"`
	Reason   string    `json:"reason"`
}

// RecordOffline writes a controller's offline decisions to the audit chain (action
// door.decision.offline, each at the time it was made). A grant of a credential the door was never
// sent (none of the sets it was sent lately holds its hash) is recorded as
// door.decision.offline.unexpected: a controller granting what vigil did not give it is
// tampered with or broken. It returns how many were unexpected.
func (e *Engine) RecordOffline(ctx context.Context, door string, ds []OfflineDecision) (int, error) {
	sent := e.hist.hashes(door)
	// The sets kept in memory go with a restart (often what made the controller decide offline):
	// the door's set as it is now counts as sent too.
	cur, err := e.doorSet(ctx, door, e.snapshot())
	if err != nil {
		// Without it every grant would look unexpected: the controller sends them again later.
		return 0, fmt.Errorf("access: the door's credential set: %w", err)
	}
	for _, cc := range cur {
		sent[cc.Hash] = true
	}
	unexpected := 0
	entries := make([]audit.Entry, len(ds))
	for i, d := range ds {
		action := "door.decision.offline"
		if d.Grant && !sent[d.Hash] {
			action += ".unexpected"
			unexpected++
		}
		detail, _ := json.Marshal(map[string]any{"door": door, "credential": d.Kind, "hash": d.Hash, "person": d.PersonID, "grant": d.Grant, "reason": d.Reason, "decided_at": d.Time})
		entries[i] = audit.Entry{Actor: "door:" + door, Role: "controller", Action: action, Reason: d.Reason, Detail: detail}
	}
	// One commit: all are recorded or none (the controller then sends them all again).
	if _, err := e.trail.AppendAll(ctx, entries); err != nil {
		return 0, err
	}
	return unexpected, nil
}
