package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
)

// TestAutoUnlockFromDoorCameras runs camsim's door cameras through vigil to doorsim's
// controllers and counts the unlocks against camsim's ground truth. Two doors, each with its
// camera, and a street camera that watches no door. Obama lives behind both doors; Kit
// Harington is enrolled but lives in a unit with no right to these doors; Jeff Bezos was never
// enrolled. Every passage of Obama at a door camera opens that door once (the clip loops every
// 12 s, beyond the 10 s in which a second sighting of the same person at the same door is
// ignored); nobody else opens anything; Kit's sightings are decided and refused in the audit.
func TestAutoUnlockFromDoorCameras(t *testing.T) {
	doors := map[string]string{"cam001": "gate-1", "cam002": "gate-2"} // cam003 watches the street
	s := newDoorScene(t, doors, 3, []camsim.Event{
		{Kind: "face", Identity: "obama", Photo: "faces/obama/1.jpg", Start: 0.3, Duration: 2.5, Size: 110},
		{Kind: "face", Identity: "kit_harington", Photo: "faces/kit_harington/2.jpg", Start: 4.3, Duration: 2.5, Size: 110, Reverse: true},
		{Kind: "face", Identity: "jeff_bezos", Photo: "faces/jeff_bezos/1.jpg", Start: 8.3, Duration: 2.5, Size: 110},
	}, 12)
	s.call("/v1/units", `{"id":"g1-0101"}`)
	s.call("/v1/units", `{"id":"h7-0707"}`)
	s.resident("obama", "g1-0101", "faces/obama/2.jpg")
	s.resident("kit_harington", "h7-0707", "faces/kit_harington/1.jpg")
	s.call("/v1/doors/gate-1/rules", `{"who_kind":"unit","who":"g1-0101"}`)
	s.call("/v1/doors/gate-2/rules", `{"who_kind":"unit","who":"g1-0101"}`)
	simStop := s.run(26 * time.Second) // two loops of the clip on every camera

	// Ground truth: Obama's passages at each door's camera, the sure ones (seen whole before the
	// cameras stopped) and those cut short by the cameras' start or stop (they may or may not
	// open).
	sure, maybe := map[string]int{}, map[string]int{}
	others := 0
	for _, l := range s.passages() {
		door, ok := doors[l.Camera]
		switch {
		case !ok || l.Identity != "obama":
			others++
		case !l.Partial && l.Leave.Before(simStop):
			sure[door]++
		default:
			maybe[door]++
		}
	}
	got := map[string]int{}
	for _, u := range s.unlocks {
		if u.PersonID != "obama" {
			t.Errorf("%s opened for %s", u.Door, u.PersonID)
		}
		got[u.Door]++
	}
	t.Logf("unlocks %v; Obama's passages at the doors: %v whole, %v cut short; %d other passages", got, sure, maybe, others)
	for _, door := range doors {
		if sure[door] == 0 {
			t.Fatalf("camsim sent no whole passage of Obama past %s", door)
		}
		if got[door] < sure[door] || got[door] > sure[door]+maybe[door] {
			t.Errorf("%s: %d unlocks for %d passages (+%d cut short)", door, got[door], sure[door], maybe[door])
		}
	}
	if others == 0 {
		t.Fatal("no other passages in the scene")
	}
	// Kit was seen at the doors and refused by the same decision path, in the audit.
	decisions := s.cameraDecisions()
	kitDenied, obamaGranted := 0, 0
	for _, d := range decisions {
		switch {
		case d.Person == "kit_harington" && !d.Grant:
			kitDenied++
		case d.Person == "obama" && d.Grant:
			obamaGranted++
		}
	}
	if kitDenied == 0 || obamaGranted != len(s.unlocks) {
		t.Errorf("audit: %d refusals for Kit, %d grants for Obama (%d unlocks)", kitDenied, obamaGranted, len(s.unlocks))
	}
	s.node.Stop()
}

// cameraDecision is one door decision from a door's camera, as the audit chain keeps it.
type cameraDecision struct {
	Door, Person, Reason string
	Grant                bool
}

// cameraDecisions reads every door decision made from a camera out of the audit chain.
func (s *doorScene) cameraDecisions() []cameraDecision {
	conn, err := pgx.Connect(context.Background(), s.dbURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), `SELECT d->>'door', coalesce(d->>'person', ''), d->>'reason', (d->>'grant')::bool
		FROM (SELECT detail::jsonb AS d FROM audit WHERE action = 'door.decision') a WHERE d->>'source' = 'camera'`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cameraDecision, error) {
		var c cameraDecision
		return c, r.Scan(&c.Door, &c.Person, &c.Reason, &c.Grant)
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func freeAddrT(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
