package main

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
)

// eaResident is an East-Asian resident of the scenario: enrolled from one photo, walking past
// the cameras in another.
type eaResident struct{ id, door, enrol, walk string }

// TestEastAsianDoorsNoFalseOpens is the site as it is: only East-Asian faces. Two towers, each
// door watched by its camera, three residents each (enrolled from one photo, seen in another);
// seven East-Asian people never enrolled walk past too. Every passage at a
// door camera is an attempt: a resident at their own door may open it, anyone else at any door
// must not. Over two loops of the clip, no door opens for the wrong person (goal 0 false opens,
// with the attempts counted); the residents' own doors open for at least some of their passages
// (the photos are press photos years apart, harder than a door camera against its enrolment).
func TestEastAsianDoorsNoFalseOpens(t *testing.T) {
	// Each resident's pair of photos is one of the closest pairs of that person in the set, as a
	// door camera's view is close to its enrolment; the strangers are the other people.
	residents := []eaResident{
		{"cn103", "tower-a", "faces_ea/cn103/103_10.jpg", "faces_ea/cn103/103_7.jpg"},
		{"cn107", "tower-a", "faces_ea/cn107/107_1.jpg", "faces_ea/cn107/107_17.jpg"},
		{"cn109", "tower-a", "faces_ea/cn109/109_24.jpg", "faces_ea/cn109/109_25.jpg"},
		{"cn104", "tower-b", "faces_ea/cn104/104_1.jpg", "faces_ea/cn104/104_2.jpg"},
		{"cn105", "tower-b", "faces_ea/cn105/105_1.jpg", "faces_ea/cn105/105_6.jpg"},
		{"cn111", "tower-b", "faces_ea/cn111/111_2.jpg", "faces_ea/cn111/111_20.jpg"},
	}
	strangers := map[string]string{
		"cn101": "faces_ea/cn101/101_13.jpg", "cn102": "faces_ea/cn102/102_1.jpg", "cn106": "faces_ea/cn106/106_14.jpg",
		"cn108": "faces_ea/cn108/108_20.jpg", "cn110": "faces_ea/cn110/110_12.jpg",
		"jimin_aoa": "faces/jimin_aoa/1.jpg", "chaeyoung_twice": "faces/chaeyoung_twice/1.jpg",
	}
	var evs []camsim.Event
	at := 0.3
	add := func(id, photo string) {
		evs = append(evs, camsim.Event{Kind: "face", Identity: id, Photo: photo, Start: at, Duration: 2.3, Size: 140, Reverse: len(evs)%2 == 1})
		at += 2.6
	}
	home := map[string]string{}
	for _, r := range residents {
		add(r.id, r.walk)
		home[r.id] = r.door
	}
	for _, id := range []string{"cn101", "cn102", "cn106", "cn108", "cn110", "jimin_aoa", "chaeyoung_twice"} {
		add(id, strangers[id])
	}
	seconds := int(at + 0.7)
	doors := map[string]string{"cam001": "tower-a", "cam002": "tower-b"}
	s := newDoorScene(t, doors, 2, evs, seconds)
	for _, r := range residents {
		unit := r.door + "-" + r.id
		s.call("/v1/units", fmt.Sprintf(`{"id":%q}`, unit))
		s.resident(r.id, unit, r.enrol)
		s.call("/v1/doors/"+r.door+"/rules", fmt.Sprintf(`{"who_kind":"unit","who":%q}`, unit))
	}
	loops := 2 // bench/run.sh eadoors runs more (EA_DOOR_LOOPS)
	if v, err := strconv.Atoi(os.Getenv("EA_DOOR_LOOPS")); err == nil && v > 0 {
		loops = v
	}
	simStop := s.run(time.Duration(loops*seconds) * time.Second)

	// Every whole passage at a door camera is an attempt.
	type attempt struct{ own, other, stranger int }
	var tried attempt
	passages := s.passages()
	for _, l := range passages {
		door, ok := doors[l.Camera]
		if !ok || l.Partial || !l.Leave.Before(simStop) {
			continue
		}
		switch h, resident := home[l.Identity]; {
		case resident && h == door:
			tried.own++
		case resident:
			tried.other++
		default:
			tried.stranger++
		}
	}
	// An unlock is right only for a resident of that door who was passing its camera then.
	right, wrong := 0, 0
	for _, u := range s.unlocks {
		ok := false
		if home[u.PersonID] == u.Door {
			shot, _ := event.TimeOfID(u.Event)
			for _, l := range passages {
				if doors[l.Camera] == u.Door && l.Identity == u.PersonID && !shot.Before(l.Enter.Add(-time.Second)) && !shot.After(l.Leave.Add(time.Second)) {
					ok = true
				}
			}
		}
		if ok {
			right++
		} else {
			wrong++
			t.Errorf("false open: %s opened for %s (event %s)", u.Door, u.PersonID, u.Event)
		}
	}
	reasons := map[string]int{}
	for _, d := range s.cameraDecisions() {
		reasons[d.Reason]++
	}
	t.Logf("attempts at door cameras: %d by residents at their own door, %d by residents at the other tower, %d by strangers; "+
		"opened %d times for the right resident, %d false opens; camera decisions by reason %v",
		tried.own, tried.other, tried.stranger, right, wrong, reasons)
	if tried.own == 0 || tried.other == 0 || tried.stranger == 0 {
		t.Fatalf("the scene lacks a kind of attempt: %+v", tried)
	}
	if 2*right < tried.own {
		t.Errorf("residents' own doors opened for %d of %d passages", right, tried.own)
	}
	s.node.Stop()
}
