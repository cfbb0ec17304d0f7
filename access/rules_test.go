package access

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/space"
)

// site is a small snapshot built by hand: the rules read nothing else.
func site(t *testing.T) *snapshot {
	t.Helper()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ptr := func(v time.Time) *time.Time { return &v }
	weekdays, err := ParseSchedule([]byte(`{"mon":[["07:00","19:00"]],"tue":[["07:00","19:00"]]}`), nil, "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := newSecrets(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	h := sec.hash
	s := &snapshot{
		hash: h,
		doors: map[string]*Door{
			"b1":     {ID: "b1", PulseMS: 3000},
			"gym":    {ID: "gym"},
			"lobby":  {ID: "lobby", Area: "tower", Direction: "in", AntiPassback: true},
			"office": {ID: "office"},
			"vault":  {ID: "vault"},
			"safe":   {ID: "safe", FacePolicy: PolicyVerify},
			"gate-x": {ID: "gate-x", Area: "p1", Direction: "in", PlatePolicy: PlateExact},
			"gate-c": {ID: "gate-c", PlatePolicy: PlateConfusable},
		},
		people: map[string]*person{
			"wang":  {id: "wang", kind: "resident", leases: []lease{{unit: "b1-101", starts: at("2026-01-01T00:00:00Z"), ends: at("2027-01-01T00:00:00Z")}}},
			"li":    {id: "li", kind: "resident", leases: []lease{{unit: "b1-102", starts: at("2025-01-01T00:00:00Z"), ends: at("2026-06-01T00:00:00Z")}}},
			"zhao":  {id: "zhao", kind: "resident", leases: []lease{{unit: "b1-103", starts: at("2027-01-01T00:00:00Z"), ends: at("2028-01-01T00:00:00Z")}}},
			"chen":  {id: "chen", kind: "staff", groups: map[string]bool{"cleaners": true}},
			"sun":   {id: "sun", kind: "resident", blacklisted: true},
			"guest": {id: "guest", kind: "visitor"},
			"zhou":  {id: "zhou", kind: "staff"},
			"ma":    {id: "ma", kind: "resident", leases: []lease{{unit: "b1-104", starts: at("2026-01-01T00:00:00Z"), ends: at("2027-01-01T00:00:00Z")}}},
			"vis":   {id: "vis", kind: "visitor"},
			"vis2":  {id: "vis2", kind: "visitor"},
		},
		creds: map[[32]byte]*credential{
			h(KindCard, "W1"):             {person: "wang"},
			h(KindPIN, "9111"):            {person: "wang", duress: true},
			h(KindCard, "L1"):             {person: "li"},
			h(KindCard, "Z1"):             {person: "zhao"},
			h(KindCard, "C1"):             {person: "chen"},
			h(KindCard, "S1"):             {person: "sun"},
			h(KindCard, "M1"):             {person: "ma"},
			h(KindQR, "vis-qr"):           {person: "vis"},
			h(KindQR, "vis2-qr"):          {person: "vis2"},
			h(KindPlate, "粤B12345"):       {person: "wang"},
			h(KindPlate, "粤BTZ345"):       {person: "ma"},
			h(KindPlate, "粤C77777"):       {person: "vis", until: ptr(at("2026-11-30T03:00:00Z"))},
			h(KindQR, "guest-qr"):         {person: "guest", validFrom: ptr(at("2026-11-30T00:00:00Z")), until: ptr(at("2026-12-01T00:00:00Z"))},
			h(KindQR, "old-qr"):           {person: "guest", until: ptr(at("2026-11-01T00:00:00Z"))},
			h(KindQR, "next-qr"):          {person: "guest", validFrom: ptr(at("2026-12-24T00:00:00Z"))},
			h(KindPIN, "4321"):            {person: "chen"},
			h(KindPIN, "4329"):            {person: "chen", duress: true},
			SecretKey(KindCard, "OLD-C1"): {person: "chen"},
		},
		revoked: map[[32]byte]bool{h(KindCard, "LOST"): true},
		// visitors invited by wang (lease in force) and by li (lease ended), at b1 on the Monday
		visits: map[string][]visit{
			"vis":  {{id: "visit-1", sponsor: "wang", doors: []string{"b1", "gate-x"}, starts: at("2026-11-30T01:00:00Z"), ends: at("2026-11-30T03:00:00Z")}},
			"vis2": {{id: "visit-2", sponsor: "li", doors: []string{"b1"}, starts: at("2026-11-30T01:00:00Z"), ends: at("2026-11-30T03:00:00Z")}},
		},
		// a card stored before keyed hashing (SHA-256) still opens
		rules: map[string][]rule{
			"b1":     {{whoKind: "unit", who: "b1-101"}, {whoKind: "unit", who: "b1-102"}, {whoKind: "unit", who: "b1-103"}, {whoKind: "person", who: "sun"}},
			"gym":    {{whoKind: "group", who: "cleaners", schedule: weekdays}, {whoKind: "person", who: "guest"}},
			"lobby":  {{whoKind: "kind", who: "resident"}},
			"office": {{whoKind: "kind", who: "staff"}},
			"vault":  {{whoKind: "person", who: "chen", factors: "card+pin"}},
			"safe":   {{whoKind: "person", who: "wang"}, {whoKind: "person", who: "chen"}},
			"gate-x": {{whoKind: "kind", who: "resident"}},
			"gate-c": {{whoKind: "kind", who: "resident"}},
		},
		// wang's template; chen's far from it; zhou's a look-alike of chen's.
		faces: &faceSet{space: space.DlibV1, person: []string{"wang", "chen", "zhou"}, emb: make([]float32, 3*128)},
	}
	s.faces.emb[0], s.faces.emb[128+1], s.faces.emb[256+1], s.faces.emb[256+3] = 1, 1, 1, 0.02
	return s
}

// TestRulesEveryReason decides one case per outcome from a snapshot alone, and every reason code
// in Reasons is among them.
func TestRulesEveryReason(t *testing.T) {
	s := site(t)
	monday := time.Date(2026, 11, 30, 10, 0, 0, 0, time.FixedZone("CST", 8*3600)) // a Monday, 10:00 in Shanghai
	sunday := monday.AddDate(0, 0, -1)
	inside := map[[2]string]bool{{"wang", "tower"}: true}
	passback := func(p, a string) (bool, bool) { in, ok := inside[[2]string{p, a}]; return in, ok }
	dc := func(door string, c Presented, at time.Time, pb Passback) verdict {
		return s.decideCredential(door, c, at, pb, false)
	}
	face := func(d float32, live float32) FaceProbe { // d from wang's template
		e := make([]float32, 128)
		e[0] = 1 + d
		return FaceProbe{Found: true, Embedding: e, Liveness: live}
	}
	chens := FaceProbe{Found: true, Embedding: s.faces.vector(1), Liveness: 0.9}
	cam := func(person string, votes int, live float32, p FaceProbe) CameraFace {
		return CameraFace{Person: person, Votes: votes, Liveness: live, Embedding: p.Embedding, Model: space.DlibV1.Name}
	}
	cases := []struct {
		name string
		got  verdict
		want string
	}{
		{"card of a resident with a lease in force", dc("b1", Presented{Kind: KindCard, Value: "W1"}, monday, passback), Granted},
		{"duress PIN opens with an alarm", dc("b1", Presented{Kind: KindPIN, Value: "9111"}, monday, passback), GrantedDuress},
		{"unknown door", dc("b9", Presented{Kind: KindCard, Value: "W1"}, monday, passback), DenyUnknownDoor},
		{"unknown card", dc("b1", Presented{Kind: KindCard, Value: "NOPE"}, monday, passback), DenyUnknown},
		{"revoked card", dc("b1", Presented{Kind: KindCard, Value: "LOST"}, monday, passback), DenyRevoked},
		{"QR past its window", dc("gym", Presented{Kind: KindQR, Value: "old-qr"}, monday, passback), DenyExpired},
		{"QR before its window", dc("gym", Presented{Kind: KindQR, Value: "next-qr"}, monday, passback), DenyNotYetValid},
		{"QR within its window", dc("gym", Presented{Kind: KindQR, Value: "guest-qr"}, monday, passback), Granted},
		{"blacklisted, though a rule names him", dc("b1", Presented{Kind: KindCard, Value: "S1"}, monday, passback), DenyBlacklisted},
		{"no rule for staff at a residents' door", dc("b1", Presented{Kind: KindCard, Value: "C1"}, monday, passback), DenyNoRule},
		{"lease ended", dc("b1", Presented{Kind: KindCard, Value: "L1"}, monday, passback), DenyLeaseEnded},
		{"lease not started", dc("b1", Presented{Kind: KindCard, Value: "Z1"}, monday, passback), DenyLeaseFuture},
		{"group on its schedule", dc("gym", Presented{Kind: KindCard, Value: "C1"}, monday, passback), Granted},
		{"group outside its schedule", dc("gym", Presented{Kind: KindCard, Value: "C1"}, sunday, passback), DenySchedule},
		{"kind rule", dc("office", Presented{Kind: KindCard, Value: "C1"}, monday, passback), Granted},
		{"a card stored before keyed hashing", dc("office", Presented{Kind: KindCard, Value: "OLD-C1"}, monday, passback), Granted},
		{"card alone where the rule asks for card and PIN", dc("vault", Presented{Kind: KindCard, Value: "C1"}, monday, passback), DenyPINRequired},
		{"card with another's PIN", dc("vault", Presented{Kind: KindCard, Value: "C1", PIN: "9111"}, monday, passback), DenyPINRequired},
		{"card with its holder's PIN", dc("vault", Presented{Kind: KindCard, Value: "C1", PIN: "4321"}, monday, passback), Granted},
		{"card with its holder's duress PIN", dc("vault", Presented{Kind: KindCard, Value: "C1", PIN: "4329"}, monday, passback), GrantedDuress},
		{"a PIN at a locked keypad", s.decideCredential("b1", Presented{Kind: KindPIN, Value: "9111"}, monday, passback, true), DenyPINLocked},
		{"a card at a locked keypad", s.decideCredential("b1", Presented{Kind: KindCard, Value: "W1"}, monday, passback, true), Granted},
		{"second entry without an exit", dc("lobby", Presented{Kind: KindCard, Value: "W1"}, monday, passback), DenyAntiPassback},
		{"first entry", dc("lobby", Presented{Kind: KindCard, Value: "M1"}, monday, passback), Granted},
		{"every lease ended, at a door that names residents by kind", dc("lobby", Presented{Kind: KindCard, Value: "L1"}, monday, passback), DenyLeaseEnded},
		{"visitor in the window at an invited door", dc("b1", Presented{Kind: KindQR, Value: "vis-qr"}, monday, passback), Granted},
		{"visitor after the window", dc("b1", Presented{Kind: KindQR, Value: "vis-qr"}, monday.Add(2*time.Hour), passback), DenyExpired},
		{"visitor at a door the invitation does not name", dc("office", Presented{Kind: KindQR, Value: "vis-qr"}, monday, passback), DenyNoRule},
		{"gate: a resident's car", pickPlate(s.decidePlate("gate-x", car("粤B12345", 0.6, 3), monday, passback)), Granted},
		{"gate: one confusable character off, exact policy", pickPlate(s.decidePlate("gate-x", car("粤B1234S", 0.95, 3), monday, passback)), DenyUnknown},
		{"gate: one confusable character off, confusable policy", pickPlate(s.decidePlate("gate-c", car("粤B1234S", 0.95, 3), monday, passback)), Granted},
		{"gate: one confusable character off, read unsure", pickPlate(s.decidePlate("gate-c", car("粤B1234S", 0.5, 3), monday, passback)), DenyUnknown},
		{"gate: another province is another car", pickPlate(s.decidePlate("gate-c", car("湘B12345", 0.99, 3), monday, passback)), DenyUnknown},
		{"gate: two registered plates one character off", pickPlate(s.decidePlate("gate-c", car("粤B1Z345", 0.99, 3), monday, passback)), DenyPlateAmbiguous},
		{"gate: not a plate", pickPlate(s.decidePlate("gate-x", car("粤B123", 0.99, 3), monday, passback)), DenyPlateInvalid},
		{"gate: read once, unsure", pickPlate(s.decidePlate("gate-x", car("粤B12345", 0.9, 1), monday, passback)), DenyPlateFewReads},
		{"gate: read once, sure of every character", pickPlate(s.decidePlate("gate-x", car("粤B12345", 0.99, 1), monday, passback)), Granted},
		{"gate: a visitor's car in its window", pickPlate(s.decidePlate("gate-x", car("粤C77777", 0.99, 3), monday, passback)), Granted},
		{"gate: a visitor's car after its window", pickPlate(s.decidePlate("gate-x", car("粤C77777", 0.99, 3), monday.Add(2*time.Hour), passback)), DenyExpired},
		{"visitor whose host's lease ended", dc("b1", Presented{Kind: KindQR, Value: "vis2-qr"}, monday, passback), DenySponsor},
		{"face of a resident", pick(s.decideFace("b1", face(0.1, 0.9), "", monday, passback)), Granted},
		{"no face in the photo", pick(s.decideFace("b1", FaceProbe{}, "", monday, passback)), DenyNoFace},
		{"a photo of a face", pick(s.decideFace("b1", face(0.1, 0.2), "", monday, passback)), DenySpoof},
		{"a face too far from any template", pick(s.decideFace("b1", face(0.6, 0.9), "", monday, passback)), DenyNoMatch},
		{"a face of someone outside the door's gallery", pick(s.decideFace("b1", chens, "", monday, passback)), DenyNoMatch},
		{"a face with a look-alike in the door's gallery", pick(s.decideFace("office", chens, "", monday, passback)), DenyAmbiguous},
		{"face at an unknown door", pick(s.decideFace("b9", face(0.1, 0.9), "", monday, passback)), DenyUnknownDoor},
		{"verify door: a face before any credential", pick(s.decideFace("safe", face(0.1, 0.9), "", monday, passback)), DenySecondFactor},
		{"verify door: the face of the credential's holder", pick(s.decideFace("safe", face(0.1, 0.9), "wang", monday, passback)), Granted},
		{"verify door: another's face after a credential", pick(s.decideFace("safe", chens, "wang", monday, passback)), DenyNoMatch},
		{"camera: recognised resident", pick(s.decidePerson("b1", cam("wang", 2, 0.9, face(0.1, 0.9)), "", monday, passback)), Granted},
		{"camera: not live", pick(s.decidePerson("b1", cam("wang", 2, 0.1, face(0.1, 0.9)), "", monday, passback)), DenySpoof},
		{"camera: one frame only", pick(s.decidePerson("b1", cam("wang", 1, 0.9, face(0.1, 0.9)), "", monday, passback)), DenyFewFrames},
		{"camera: the door's gallery disagrees with the site's", pick(s.decidePerson("b1", cam("li", 3, 0.9, face(0.1, 0.9)), "", monday, passback)), DenyAmbiguous},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if c.got.reason != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.got.reason, c.want)
		}
		seen[c.got.reason] = true
	}
	if v := dc("lobby", Presented{Kind: KindCard, Value: "M1"}, monday, passback); v.area != "tower" {
		t.Errorf("a grant through an anti-passback door names its area: %+v", v)
	}

	// The request stage: the signature, the clock, the nonce.
	door := &Door{ID: "b1", Key: []byte("0123456789abcdef0123456789abcdef")}
	n := NewNonces()
	ts := func(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }
	nonce := "nonce-0123456789abcdef"
	body := []byte(`{"credential":{"kind":"card","value":"W1"}}`)
	sig := Sign(door.Key, "POST", "/v1/doors/b1/decisions", "", ts(monday), nonce, body)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"good", n.Verify(door, "POST", "/v1/doors/b1/decisions", "", ts(monday), nonce, sig, body, monday), ""},
		{"replayed", n.Verify(door, "POST", "/v1/doors/b1/decisions", "", ts(monday), nonce, sig, body, monday), DenyReplay},
		{"query that does not parse", n.Verify(door, "GET", "/v1/doors/b1/credentials", "since=%zz", ts(monday), "nonce-0a0a0a0a0a0a0a0a", Sign(door.Key, "GET", "/v1/doors/b1/credentials", "since=%zz", ts(monday), "nonce-0a0a0a0a0a0a0a0a", nil), nil, monday), DenyBadSignature},
		{"body changed", n.Verify(door, "POST", "/v1/doors/b1/decisions", "", ts(monday), nonce+"x", sig, []byte(`{}`), monday), DenyBadSignature},
		{"stale", n.Verify(door, "POST", "/v1/doors/b1/decisions", "", ts(monday), "nonce-fedcba9876543210", Sign(door.Key, "POST", "/v1/doors/b1/decisions", "", ts(monday), "nonce-fedcba9876543210", body), body, monday.Add(time.Minute)), DenyStale},
	} {
		got, _ := IsRequestError(c.err)
		if got != c.want {
			t.Errorf("request %s: %q, want %q", c.name, got, c.want)
		}
		seen[got] = true
	}
	seen[DenyBadBody] = true // decided while the body is read: api's TestControllerLargeBodies
	for _, r := range Reasons {
		if !seen[r.Code] {
			t.Errorf("reason %s (%s) has no case in this table", r.Code, r.Meaning)
		}
	}
}

func pick(v verdict, _ float32) verdict { return v }

func pickPlate(v verdict, _ string) verdict { return v }

func car(text string, conf float32, reads int) PlateSighting {
	return PlateSighting{Text: text, MinConf: conf, Reads: reads}
}

// The README's protocol section and the OpenAPI contract list every reason code.
func TestReasonsDocumented(t *testing.T) {
	for _, doc := range []string{"README.md", "api/openapi.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range Reasons {
			if !strings.Contains(string(b), "`"+r.Code+"`") && !strings.Contains(string(b), " "+r.Code+"\n") && !strings.Contains(string(b), "- "+r.Code) {
				t.Errorf("%s does not list the reason code %s", doc, r.Code)
			}
		}
	}
}

// TestSigningLabels: a signature of one kind never verifies as another (an answer replayed as an
// MQTT command, a command as an answer), and the query is part of a request's.
func TestSigningLabels(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"id":"c1"}`)
	if SignResponse(key, "1", "c1", body) == SignCommand(key, "1", "c1", body) {
		t.Fatal("an answer's signature is a command's")
	}
	if Sign(key, "GET", "/v1/doors/d/credentials", "since=5", "1", "n", nil) == Sign(key, "GET", "/v1/doors/d/credentials", "since=1", "1", "n", nil) {
		t.Fatal("the query is not signed")
	}
	if Sign(key, "GET", "/p", "b=2&a=1", "1", "n", nil) != Sign(key, "GET", "/p", "a=1&b=2", "1", "n", nil) {
		t.Fatal("the query is not canonical")
	}
}
