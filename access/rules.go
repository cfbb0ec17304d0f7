package access

import "time"

// The rules are pure functions of a snapshot and a time: they read nothing else and write
// nothing, so every outcome has a table test (rules_test.go) with no database. The engine
// (decide.go) audits what they say and keeps the anti-passback state.

// Passback says whether a person is inside an anti-passback area (known false: no record).
type Passback func(person, area string) (inside, known bool)

// verdict is what the rules decided: the reason code, whose credential or face it was, and the
// anti-passback area a grant moves them into or out of.
type verdict struct {
	person, reason, area string
}

// decideCredential decides a card, PIN or QR code presented at a door at now. pinLocked says the
// door takes no PIN now (too many wrong ones lately).
func (s *snapshot) decideCredential(doorID string, c Presented, now time.Time, inside Passback, pinLocked bool) verdict {
	switch {
	case s.doors[doorID] == nil:
		return verdict{reason: DenyUnknownDoor}
	case pinLocked && (c.Kind == KindPIN || c.PIN != ""):
		return verdict{reason: DenyPINLocked}
	}
	person, duress, why := s.credential(c.Kind, c.Value, now)
	pinOK := false
	if why == "" && c.Kind == KindCard && c.PIN != "" { // a second factor: the same person's PIN
		pinPerson, pinDuress, pinWhy := s.credential(KindPIN, c.PIN, now)
		if pinWhy != "" || pinPerson != person {
			return verdict{person: person, reason: DenyPINRequired}
		}
		pinOK, duress = true, duress || pinDuress // a duress PIN typed with the card still raises the alarm
	}
	if why != "" {
		return verdict{person: person, reason: why}
	}
	reason, area := s.rights(doorID, person, duress, now, inside, pinOK)
	return verdict{person: person, reason: reason, area: area}
}

// decideFace decides a face photo's probe at a door at now; dist is the nearest template's.
// claimed is the person a credential just named at this door (PolicyVerify): the face is then
// compared with that person's templates alone.
func (s *snapshot) decideFace(doorID string, f FaceProbe, claimed string, now time.Time, inside Passback) (v verdict, dist float32) {
	if s.doors[doorID] == nil {
		return verdict{reason: DenyUnknownDoor}, 0
	}
	person, dist, why := s.face(doorID, f, claimed)
	return s.verdict(doorID, person, why, false, now, inside), dist
}

// MinFrames is how many detections of a passage must agree on the person before a door
// camera's face opens anything.
const MinFrames = 2

// CameraFace is a passage the pipeline recognised at a door's camera: whom its gallery matched,
// how many detections agreed, the best shot's liveness and embedding (and its space).
type CameraFace struct {
	Person    string
	Votes     int
	Liveness  float32
	Embedding []float32
	Model     string
}

// decidePerson decides a passage the pipeline recognised at a door's camera. The pipeline's
// site-wide match only proposes: the door decides open-set again among its own gallery, and the
// two must agree.
func (s *snapshot) decidePerson(doorID string, c CameraFace, claimed string, now time.Time, inside Passback) (verdict, float32) {
	switch {
	case s.doors[doorID] == nil:
		return verdict{person: c.Person, reason: DenyUnknownDoor}, 0
	case c.Votes < MinFrames:
		return verdict{person: c.Person, reason: DenyFewFrames}, 0
	case c.Model != s.faces.space.Name:
		return verdict{person: c.Person, reason: DenyNoMatch}, 0
	}
	person, dist, why := s.face(doorID, FaceProbe{Found: true, Liveness: c.Liveness, Embedding: c.Embedding}, claimed)
	if why == "" && person != c.Person {
		why = DenyAmbiguous
	}
	return s.verdict(doorID, c.Person, why, false, now, inside), dist
}

// verdict goes on to the person's rights unless why already refused.
func (s *snapshot) verdict(doorID, person, why string, duress bool, now time.Time, inside Passback) verdict {
	if why != "" {
		return verdict{person: person, reason: why}
	}
	reason, area := s.rights(doorID, person, duress, now, inside, false)
	return verdict{person: person, reason: reason, area: area}
}

// credential is what the snapshot says of a presented card, PIN or QR code at now: whose it is,
// whether it is a duress code, or why it opens nothing ("" when it may go on to the rules).
func (s *snapshot) credential(kind, value string, now time.Time) (personID string, duress bool, reason string) {
	key := s.hash(kind, value)
	cred, revoked := s.creds[key], s.revoked[key]
	if cred == nil && !revoked { // stored before keyed hashing
		key = SecretKey(kind, value)
		cred, revoked = s.creds[key], s.revoked[key]
	}
	switch {
	case cred == nil && revoked:
		return "", false, DenyRevoked
	case cred == nil:
		return "", false, DenyUnknown
	case cred.validFrom != nil && now.Before(*cred.validFrom):
		return cred.person, cred.duress, DenyNotYetValid
	case cred.until != nil && !now.Before(*cred.until):
		return cred.person, cred.duress, DenyExpired
	}
	return cred.person, cred.duress, ""
}

// held is the live credential a secret names (keyed hash, or SHA-256 for rows stored before
// keyed hashing), or nil.
func (s *snapshot) held(kind, value string) *credential {
	if c := s.creds[s.hash(kind, value)]; c != nil {
		return c
	}
	return s.creds[SecretKey(kind, value)]
}

// face is what the snapshot says of a face probe at a door, open-set: the candidates are only
// the people who may use the door (its gallery), the nearest must be inside the space's door
// threshold and the runner-up farther by the space's margin. It returns the nearest person and
// distance, or why it opens nothing ("" when it may go on to the rules).
func (s *snapshot) face(doorID string, f FaceProbe, claimed string) (personID string, dist float32, reason string) {
	switch {
	case !f.Found:
		return "", 0, DenyNoFace
	case f.Liveness < LivenessMinimum:
		return "", 0, DenySpoof
	}
	if s.faceRisk(doorID).Effective == PolicyVerify {
		if claimed == "" || !s.gallery(doorID)[claimed] {
			return "", 0, DenySecondFactor
		}
		return s.faceIn(map[string]bool{claimed: true}, f.Embedding)
	}
	return s.faceIn(s.gallery(doorID), f.Embedding)
}

// faceIn is the open-set rule over the templates of the people in gallery.
func (s *snapshot) faceIn(gallery map[string]bool, q []float32) (personID string, dist float32, reason string) {
	c := s.faces.candidates(q, func(p string) bool { return gallery[p] })
	sp := s.faces.space
	switch {
	case c.first == "" || c.firstD >= sp.Door:
		return c.first, c.firstD, DenyNoMatch
	case c.secondD-c.firstD < sp.Margin:
		return c.first, c.firstD, DenyAmbiguous
	}
	return c.first, c.firstD, ""
}

// gallery is the people who may use a door at some time: those its rules name by person, kind,
// group or unit (any lease of the unit). Schedules, lease dates and blacklists are the rules'
// business afterwards; the gallery only keeps a face from being searched among the whole site.
func (s *snapshot) gallery(doorID string) map[string]bool {
	s.galleryMu.Lock()
	defer s.galleryMu.Unlock()
	if g, ok := s.galleries[doorID]; ok {
		return g
	}
	g := map[string]bool{}
	for _, r := range s.rules[doorID] {
		for id, p := range s.people {
			if r.names(p) {
				g[id] = true
			}
		}
	}
	if s.galleries == nil {
		s.galleries = map[string]map[string]bool{}
	}
	s.galleries[doorID] = g
	return g
}

// names reports whether the rule is about p at any time.
func (r rule) names(p *person) bool {
	switch r.whoKind {
	case "person":
		return r.who == p.id
	case "kind":
		return r.who == p.kind
	case "group":
		return p.groups[r.who]
	case "unit":
		for _, l := range p.leases {
			if l.unit == r.who {
				return true
			}
		}
	}
	return false
}

// rights applies a person's rights at a door at now: blacklist, the door's rules (person, kind,
// group, or unit through a lease in force), their schedules and factors (pinOK: the person's PIN
// came with their card), then anti-passback. It returns the reason code (Granted or
// GrantedDuress when the door opens) and, when the door keeps anti-passback, the area the person
// enters or leaves.
func (s *snapshot) rights(doorID, personID string, duress bool, now time.Time, inside Passback, pinOK bool) (reason, area string) {
	door := s.doors[doorID]
	if door == nil {
		return DenyUnknownDoor, ""
	}
	p := s.people[personID]
	if p == nil {
		return DenyUnknown, ""
	}
	if p.blacklisted {
		return DenyBlacklisted, ""
	}
	if why := p.leaseRefusal(now); why != "" { // a resident whose leases have all ended opens nothing
		return why, ""
	}
	if why := s.allowed(doorID, p, now, pinOK); why != "" {
		return why, ""
	}
	if door.AntiPassback && door.Area != "" {
		if in, known := inside(p.id, door.Area); known && in == (door.Direction == "in") {
			return DenyAntiPassback, ""
		}
		area = door.Area
	}
	if duress {
		return GrantedDuress, area
	}
	return Granted, area
}

// allowed finds a rule of the door that lets p through at now: "" when one does, else the most
// telling reason why none did.
func (s *snapshot) allowed(doorID string, p *person, now time.Time, pinOK bool) string {
	why := DenyNoRule
	if p.kind == "visitor" && len(s.visits[p.id]) > 0 { // invited by a resident: the visit decides
		ok, visitWhy := s.visitAllows(doorID, p, now)
		if ok {
			return ""
		}
		if visitWhy != "" {
			why = visitWhy
		}
	}
	for _, r := range s.rules[doorID] {
		ok := false
		switch r.whoKind {
		case "person":
			ok = r.who == p.id
		case "kind":
			ok = r.who == p.kind
		case "group":
			ok = p.groups[r.who]
		case "unit":
			for _, l := range p.leases {
				if l.unit != r.who {
					continue
				}
				switch {
				case now.Before(l.starts):
					why = DenyLeaseFuture
				case !now.Before(l.ends):
					why = DenyLeaseEnded
				default:
					ok = true
				}
			}
		}
		if !ok {
			continue
		}
		if r.schedule != nil && !r.schedule.Open(now) {
			why = DenySchedule
			continue
		}
		if r.factors == "card+pin" && !pinOK {
			why = DenyPINRequired
			continue
		}
		return ""
	}
	return why
}
