package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// residentFlows runs web/test/residents.mjs (issue 19) against base: property staff register a
// resident, enrol the face, import residents and add a rule; the resident, on a phone-sized page,
// joins through the invitation link, invites a visitor, revokes the invitation, opens the door
// and reports the card lost. Each step is checked on what the page showed, then on what the
// node holds (read back with the admin's token).
func residentFlows(t *testing.T, node, dir, base, adminToken string, env ...string) {
	t.Helper()
	out := runBrowser(t, node, dir, "residents.mjs", append(env, "BASE="+base)...)
	var res struct {
		Steps []struct {
			Name, Lease, Checks, Invitation, ByPlate, Imported, Visit, Opened string
			Nav, Creds, Rules, CarParks                                       []string
			CalendarHasWang, ImportDisabled, QrLoaded, Pass                   bool
			Problems                                                          [][]string
			CredsBefore                                                       int
			Home                                                              struct {
				Name       string
				Doors, Nav []string
			}
		}
		Errors []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("residents.mjs: %v\n%s", err, out)
	}
	if len(res.Errors) > 0 || len(res.Steps) != 6 {
		t.Fatalf("residents.mjs: %d steps, errors %v", len(res.Steps), res.Errors)
	}
	reg, find, imp, rules, resident, visitor := res.Steps[0], res.Steps[1], res.Steps[2], res.Steps[3], res.Steps[4], res.Steps[5]
	if !slices.Equal(reg.Nav, []string{"People", "Leases", "Access rules", "Import"}) || !strings.Contains(reg.Lease, "in force") ||
		!slices.Contains(reg.Creds, "plate 粤A12345") || !strings.HasPrefix(reg.Checks, "✓") || !strings.Contains(reg.Invitation, "#/join?code=vgi_") {
		t.Errorf("registering a resident: %+v", reg)
	}
	if !strings.Contains(find.ByPlate, "Wang Fang") || !find.CalendarHasWang {
		t.Errorf("finding her by plate, her lease in the calendar: %+v", find)
	}
	if len(imp.Problems) != 1 || imp.Problems[0][0] != "3" || imp.Problems[0][1] != "lease_ends" || !imp.ImportDisabled ||
		!strings.Contains(imp.Imported, "0 problems") || !strings.Contains(imp.Imported, "added 2 people") {
		t.Errorf("the import: %+v", imp)
	}
	if !slices.ContainsFunc(rules.Rules, func(r string) bool { return strings.HasPrefix(r, "unit b01-0101") }) {
		t.Errorf("the rule added: %v", rules.Rules)
	}
	if len(rules.CarParks) != 1 || !strings.HasPrefix(rules.CarParks[0], "carpark-1: 0 cars") {
		t.Errorf("the car parks shown: %v", rules.CarParks)
	}
	if resident.Home.Name != "Wang Fang" || !slices.Contains(resident.Home.Doors, "gate-1") || !slices.Equal(resident.Home.Nav, []string{"Home"}) ||
		!resident.QrLoaded || !strings.Contains(resident.Visit, "Li Lei") || !strings.Contains(resident.Visit, "粤C54321") ||
		!strings.Contains(resident.Opened, "opened") || resident.CredsBefore != 2 || !visitor.Pass {
		t.Errorf("the resident's phone: %+v; the visitor's pass %v", resident, visitor.Pass)
	}
	// What the node holds: the card reported lost is revoked, the visit revoked, the door's
	// remote open audited as the resident's.
	get := func(path string, v any) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var person struct {
		Faces       int
		Credentials []struct {
			Kind      string
			RevokedAt *string `json:"revoked_at"`
		}
	}
	get("/v1/people/r-wang-fang", &person)
	if person.Faces != 1 || len(person.Credentials) != 2 || person.Credentials[0].Kind != "card" || person.Credentials[0].RevokedAt == nil {
		t.Errorf("wang fang's file after the flows: %+v", person)
	}
	var recent struct {
		Events []struct{ Actor, Action string }
	}
	get("/v1/doors/gate-1/recent", &recent)
	if !slices.ContainsFunc(recent.Events, func(e struct{ Actor, Action string }) bool {
		return e.Action == "door.unlock.remote" && e.Actor == "Wang Fang (app)"
	}) {
		t.Errorf("the resident's remote open is not in gate-1's recent events: %+v", recent.Events)
	}
}
