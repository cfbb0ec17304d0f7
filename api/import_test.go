package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/testkit/residents"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestImportPeople imports the site's 39,000 residents as property staff would: a dry run of the
// file with five seeded mistakes lists exactly those, each with its line and column, and writes
// nothing; the corrected file imports with progress, and the tables hold what it says (people,
// units, leases, cards, plates, the calendar of leases ending); the same file again adds nothing;
// the export gives every person back.
func TestImportPeople(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	trail := audit.New(pool, "")
	e, err := access.NewEngine(ctx, pool, trail, testenv.Secret())
	if err != nil {
		t.Fatal(err)
	}
	ps := auth.NewPrincipals(pool, time.Second)
	a, err := New(Deps{Cameras: fakeCameras{}, Registry: prometheus.NewRegistry(), Access: e, Audit: trail, Auth: ps}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	_, staff, _ := ps.Create(ctx, "estate office", auth.RoleProperty)
	_, operator, _ := ps.Create(ctx, "police post", auth.RoleOperator)
	post := func(tok, query string, body []byte, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/import/people"+query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "text/csv")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	const n = 39000
	now := time.Now()
	seeded := residents.Make(n, now, true)
	if resp, b := post(operator, "?dry_run=true", seeded.CSV, ""); resp.StatusCode != 403 {
		t.Fatalf("an operator's import: %d %s", resp.StatusCode, b)
	}

	// The dry run: every seeded mistake, on its line, and nothing else; nothing written.
	start := time.Now()
	resp, b := post(staff, "?dry_run=true&tz=Asia/Shanghai", seeded.CSV, "")
	var rep access.ImportReport
	if err := json.Unmarshal(b, &rep); err != nil || resp.StatusCode != 200 {
		t.Fatalf("dry run: %d %s", resp.StatusCode, b)
	}
	t.Logf("dry run of %d rows: %v, %d problems", rep.Rows, time.Since(start).Round(time.Millisecond), rep.ProblemsAll)
	var got []residents.Problem
	for _, p := range rep.Problems {
		got = append(got, residents.Problem{Line: p.Line, Column: p.Column})
	}
	if rep.Rows != n || !slices.Equal(got, seeded.Problems) || rep.People != n || rep.Credentials != n+seeded.Plates-1 {
		t.Fatalf("dry run: %d rows, problems %v, want %v; would add %d people, %d credentials", rep.Rows, rep.Problems, seeded.Problems, rep.People, rep.Credentials)
	}
	var people int
	pool.QueryRow(ctx, `SELECT count(*) FROM people`).Scan(&people)
	if people != 0 {
		t.Fatalf("the dry run wrote %d people", people)
	}
	// Imported anyway, the file with mistakes is refused whole.
	if resp, b := post(staff, "", seeded.CSV, ""); resp.StatusCode != 422 {
		t.Fatalf("importing a file with problems: %d %.300s", resp.StatusCode, b)
	}

	// The corrected file, with progress.
	clean := residents.Make(n, now, false)
	start = time.Now()
	resp, b = post(staff, "?tz=Asia/Shanghai", clean.CSV, "application/x-ndjson")
	took := time.Since(start)
	if resp.StatusCode != 200 {
		t.Fatalf("import: %d %.300s", resp.StatusCode, b)
	}
	stages := map[string]bool{}
	var final struct {
		Report *access.ImportReport `json:"report"`
		Error  string               `json:"error"`
		Stage  string               `json:"stage"`
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		final.Stage = ""
		if err := json.Unmarshal(sc.Bytes(), &final); err != nil {
			t.Fatalf("progress line %q: %v", sc.Text(), err)
		}
		stages[final.Stage] = true
	}
	if final.Report == nil || final.Error != "" || !stages["checking"] || !stages["people"] || !stages["credentials"] {
		t.Fatalf("import's progress and report: stages %v, %s", stages, final.Error)
	}
	t.Logf("import of %d rows: %v (%d people, %d units, %d leases, %d credentials)", n, took.Round(time.Millisecond),
		final.Report.People, final.Report.Units, final.Report.Leases, final.Report.Credentials)
	var units, leases, cards, plates, ending int
	pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM units), (SELECT count(*) FROM leases),
		(SELECT count(*) FROM credentials WHERE kind = 'card'), (SELECT count(*) FROM credentials WHERE kind = 'plate'),
		(SELECT count(*) FROM leases WHERE ends >= now() AND ends < now() + interval '30 days')`).Scan(&people, &units, &leases, &cards, &plates, &ending)
	if people != n || units != clean.Units || leases != n || cards != n || plates != clean.Plates {
		t.Fatalf("stored %d people, %d units, %d leases, %d cards, %d plates; the file has %d, %d, %d, %d, %d",
			people, units, leases, cards, plates, n, clean.Units, n, n, clean.Plates)
	}
	// A card from the file opens its resident's unit's door: the imported data decides.
	if _, err := e.AddDoor(ctx, testAdmin, access.Door{ID: "b01-lobby"}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddRule(ctx, testAdmin, "b01-lobby", "kind", "resident", ""); err != nil {
		t.Fatal(err)
	}
	if d, err := e.Decide(ctx, "b01-lobby", access.Presented{Kind: access.KindCard, Value: "CARD-10000007"}, "n-import-1"); err != nil || !d.Grant || d.PersonID != "r000001" {
		t.Errorf("an imported card at a door: %+v %v", d, err)
	}
	// The calendar of leases ending lists them all, a page at a time.
	listed := 0
	for after := ""; ; {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/leases?ending_within_days=30&limit=500&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+staff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Leases []access.LeaseRow `json:"leases"`
			Next   string            `json:"next"`
		}
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		listed += len(page.Leases)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if listed != ending || ending == 0 {
		t.Errorf("leases ending within 30 days: %d listed, %d stored", listed, ending)
	}

	// Again: nothing new.
	resp, b = post(staff, "?tz=Asia/Shanghai", clean.CSV, "")
	if err := json.Unmarshal(b, &rep); err != nil || resp.StatusCode != 201 || rep.People != 0 || rep.Leases != 0 || rep.Credentials != 0 || rep.Units != 0 {
		t.Fatalf("the same file again: %d %.300s", resp.StatusCode, b)
	}
	// The export: a row per lease, every person, plates but no card numbers.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/export/people", nil)
	req.Header.Set("Authorization", "Bearer "+staff)
	eresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(eresp.Body)
	eresp.Body.Close()
	if rows := bytes.Count(out, []byte("\n")); eresp.StatusCode != 200 || rows != n+1 || bytes.Contains(out, []byte("CARD-")) {
		t.Errorf("export: %d, %d lines", eresp.StatusCode, rows)
	}
}
