package access

import (
	"math"
	"sync"
	"time"
)

// Face policies of a door (doors.face_policy).
const (
	// PolicyAuto follows the measured false-positive rate: a face alone opens the door when its
	// gallery is small enough that a stranger matches someone in it less than AutoFPIR of the
	// time (the space's DoorFMR, 1 − (1 − p)^N); otherwise a face needs a card, PIN or QR code
	// of the same person, and cards, PINs and QR codes still open alone.
	PolicyAuto = ""
	// PolicyFace: a face alone opens.
	PolicyFace = "face"
	// PolicyTwoFactor: a face and a card, PIN or QR code of the same person within FactorWindow,
	// in either order; neither opens alone.
	PolicyTwoFactor = "face+credential"
	// PolicyVerify: the credential names the person and the face only confirms it, compared with
	// that person's templates alone (1:1); neither opens alone.
	PolicyVerify = "credential+face"
)

// FacePolicies lists the policies a door may have.
var FacePolicies = []string{PolicyAuto, PolicyFace, PolicyTwoFactor, PolicyVerify}

// AutoFPIR is the open-set false-positive identification rate under which PolicyAuto lets a
// face open a door alone: 0.3%, the stricter of the two operating points the field reports.
const AutoFPIR = 0.003

// FactorWindow is how long the first of two factors waits for the second at a door.
const FactorWindow = 30 * time.Second

// FaceRisk is what a door's face policy rests on.
type FaceRisk struct {
	Policy    string  `json:"face_policy"`           // as configured ("" is auto)
	Effective string  `json:"face_policy_effective"` // what applies now
	Gallery   int     `json:"face_gallery"`          // people who may use the door
	FPIR      float64 `json:"face_fpir"`             // estimated chance a stranger's face matches one of them
}

// faceRisk resolves a door's face policy against its gallery's size.
func (s *snapshot) faceRisk(doorID string) FaceRisk {
	d := s.doors[doorID]
	r := FaceRisk{Gallery: len(s.gallery(doorID))}
	if d != nil {
		r.Policy = d.FacePolicy
	}
	r.FPIR = 1 - math.Pow(1-s.faces.space.DoorFMR, float64(r.Gallery))
	r.Effective = r.Policy
	if r.Policy == PolicyAuto {
		r.Effective = PolicyFace
		if r.FPIR > AutoFPIR {
			r.Effective = PolicyTwoFactor
		}
	}
	return r
}

// factor is the first of two factors, waiting at a door.
type factor struct {
	person, kind string // kind: "face" or "credential"
	at           time.Time
}

// factors holds the first factors waiting at each door: by door and person (at a busy gate a
// second person's card must not push out the first person's face), and the door's latest
// credential (PolicyVerify compares the next face with its holder).
type factors struct {
	mu      sync.Mutex
	pending map[[3]string]time.Time // door, person, kind → when
	latest  map[string]factor       // door → the last credential presented
	// share, when set, tells the site's other nodes of each change (Engine.Share): a card shown
	// to a controller that talks to one node pairs with a face seen by the camera's node.
	share func(f factorChange)
}

// factorChange is one change to the waiting factors, as other nodes are told of it.
type factorChange struct {
	Op     string    `json:"op"` // put, take or forget
	Door   string    `json:"door"`
	Person string    `json:"person,omitempty"`
	Kind   string    `json:"kind,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// apply makes a change another node made.
func (f *factors) apply(c factorChange) {
	switch c.Op {
	case "put":
		f.store(c.Door, c.Person, c.Kind, c.At)
	case "take":
		f.mu.Lock()
		delete(f.pending, [3]string{c.Door, c.Person, c.Kind})
		f.mu.Unlock()
	case "forget":
		f.mu.Lock()
		delete(f.latest, c.Door)
		f.mu.Unlock()
	}
}

func (f *factors) tell(c factorChange) {
	f.mu.Lock()
	share := f.share
	f.mu.Unlock()
	if share != nil {
		share(c)
	}
}

// take reports (and forgets) whether person's factor of kind waits fresh at door.
func (f *factors) take(door, person, kind string, now time.Time) bool {
	f.mu.Lock()
	k := [3]string{door, person, kind}
	at, ok := f.pending[k]
	delete(f.pending, k)
	f.mu.Unlock()
	if ok {
		f.tell(factorChange{Op: "take", Door: door, Person: person, Kind: kind})
	}
	return ok && now.Sub(at) <= FactorWindow
}

// claimed is the holder of the last credential presented at door, if it is fresh.
func (f *factors) claimed(door string, now time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.latest[door]
	if !ok || now.Sub(p.at) > FactorWindow {
		return ""
	}
	return p.person
}

// forget drops the door's last credential (it has been used).
func (f *factors) forget(door string) {
	f.mu.Lock()
	delete(f.latest, door)
	f.mu.Unlock()
	f.tell(factorChange{Op: "forget", Door: door})
}

func (f *factors) put(door, person, kind string, now time.Time) {
	f.store(door, person, kind, now)
	f.tell(factorChange{Op: "put", Door: door, Person: person, Kind: kind, At: now})
}

func (f *factors) store(door, person, kind string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == nil || len(f.pending) > 10000 {
		f.pending = map[[3]string]time.Time{}
	}
	if f.latest == nil || len(f.latest) > 10000 {
		f.latest = map[string]factor{}
	}
	f.pending[[3]string{door, person, kind}] = now
	if kind == "credential" {
		f.latest[door] = factor{person: person, kind: kind, at: now}
	}
}

// pair applies a door's two-factor policy to a verdict of one factor (kind "face" or
// "credential"): a grant that needs the other factor waits for it (DenySecondFactor, and this
// factor is remembered for FactorWindow), or completes a pair the same person's other factor
// began.
func (f *factors) pair(risk FaceRisk, door, kind string, v verdict, now time.Time) verdict {
	granted := v.reason == Granted || v.reason == GrantedDuress
	if !granted {
		return v
	}
	need := false
	switch risk.Effective {
	case PolicyTwoFactor:
		// Under auto, a card alone still opens: only the face needs company.
		need = kind == "face" || risk.Policy == PolicyTwoFactor
	case PolicyVerify:
		need = kind == "credential" // the face was checked 1:1 against the credential's holder
		if kind == "face" {
			f.forget(door) // one credential, one opening
		}
	}
	if !need {
		return v
	}
	other := map[string]string{"face": "credential", "credential": "face"}[kind]
	if risk.Effective == PolicyTwoFactor && f.take(door, v.person, other, now) {
		return v
	}
	f.put(door, v.person, kind, now)
	return verdict{person: v.person, reason: DenySecondFactor}
}
