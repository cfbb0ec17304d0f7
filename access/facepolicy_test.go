package access

import (
	"testing"
	"time"
)

// TestFacePolicyPairs walks each face policy through its factors in the orders people present
// them, at a gate where two people arrive at once.
func TestFacePolicyPairs(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	ok := func(p string) verdict { return verdict{person: p, reason: Granted} }
	two := FaceRisk{Policy: PolicyTwoFactor, Effective: PolicyTwoFactor}
	auto := FaceRisk{Policy: PolicyAuto, Effective: PolicyTwoFactor} // a gallery too large for a face alone
	verify := FaceRisk{Policy: PolicyVerify, Effective: PolicyVerify}
	face := FaceRisk{Policy: PolicyAuto, Effective: PolicyFace}
	var f factors
	steps := []struct {
		name       string
		risk       FaceRisk
		kind       string
		v          verdict
		at         time.Duration
		wantReason string
	}{
		{"two factors: wang's card alone waits", two, "credential", ok("wang"), 0, DenySecondFactor},
		{"two factors: li's card at the same gate waits too", two, "credential", ok("li"), time.Second, DenySecondFactor},
		{"two factors: wang's face completes wang's pair", two, "face", ok("wang"), 2 * time.Second, Granted},
		{"two factors: wang's face again has no card left", two, "face", ok("wang"), 3 * time.Second, DenySecondFactor},
		{"two factors: li's face after 30 s finds her card stale", two, "face", ok("li"), 40 * time.Second, DenySecondFactor},
		{"two factors: a refused face stays refused", two, "face", verdict{person: "zhao", reason: DenyNoMatch}, 41 * time.Second, DenyNoMatch},
		{"auto, large gallery: a card alone opens", auto, "credential", ok("chen"), 50 * time.Second, Granted},
		{"auto, large gallery: a face alone waits", auto, "face", ok("chen"), 51 * time.Second, DenySecondFactor},
		{"auto, large gallery: then chen's card opens", auto, "credential", ok("chen"), 52 * time.Second, Granted},
		{"verify: a card alone waits for the face", verify, "credential", ok("sun"), 60 * time.Second, DenySecondFactor},
		{"verify: the face (checked 1:1 by the rules) opens", verify, "face", ok("sun"), 61 * time.Second, Granted},
		{"small gallery: a face alone opens", face, "face", ok("wu"), 70 * time.Second, Granted},
	}
	for _, s := range steps {
		got := f.pair(s.risk, "gate", s.kind, s.v, now.Add(s.at))
		if got.reason != s.wantReason {
			t.Errorf("%s: %s, want %s", s.name, got.reason, s.wantReason)
		}
		if s.name == "verify: a card alone waits for the face" {
			if c := f.claimed("gate", now.Add(s.at+time.Second)); c != "sun" {
				t.Errorf("verify: the card's holder is %q", c)
			}
		}
	}
	if c := f.claimed("gate", now.Add(62*time.Second)); c != "" {
		t.Errorf("verify: the used card still names %q", c)
	}
}
