package access

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

// The property office's bulk import: people, units and leases (and their cards, PINs and cars)
// from a CSV file with a header row, one row per person and lease. A dry run lists every problem
// with its line; the import writes everything in one transaction (all or nothing), reporting
// progress, and may be run again: what is there already is left as it is.

// ImportColumns are the columns an import reads (any order, by header; person_id and name are
// required, the rest may be absent or empty).
var ImportColumns = []string{"person_id", "name", "kind", "unit", "building", "unit_name", "lease_starts", "lease_ends", "card", "pin", "plate"}

// MaxImportProblems is how many problems a dry run lists (it counts them all).
const MaxImportProblems = 1000

// ImportProblem is one thing wrong with a row.
type ImportProblem struct {
	Line    int    `json:"line"`
	Column  string `json:"column,omitempty"`
	Message string `json:"message"`
}

// ImportReport is what a dry run found, or what an import did.
type ImportReport struct {
	Rows        int             `json:"rows"`
	Problems    []ImportProblem `json:"problems"`
	ProblemsAll int             `json:"problems_total"`
	// What the import adds (the dry run: would add).
	People      int   `json:"people"`
	Units       int   `json:"units"`
	Leases      int   `json:"leases"`
	Credentials int   `json:"credentials"`
	DryRun      bool  `json:"dry_run"`
	TookMS      int64 `json:"took_ms"`
}

// ImportProgress is called as an import goes: its stage and how far it is.
type ImportProgress func(stage string, done, total int)

type importRow struct {
	line                     int
	person, name, kind       string
	unit, building, unitName string
	starts, ends             time.Time
	hasLease                 bool
	creds                    [][2]string // kind, value
}

// parseImport reads an import file: its rows and the problems found in the file alone. loc is
// the zone of dates given without one; a lease_ends date is the end of that day.
func parseImport(r io.Reader, loc *time.Location) ([]importRow, []ImportProblem, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the file has no header row (%v)", ErrInvalid, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(ImportColumns, h) {
			return nil, nil, fmt.Errorf("%w: unknown column %q (the columns are %s)", ErrInvalid, h, strings.Join(ImportColumns, ", "))
		}
		col[h] = i
	}
	for _, need := range []string{"person_id", "name"} {
		if _, ok := col[need]; !ok {
			return nil, nil, fmt.Errorf("%w: the header has no %s column", ErrInvalid, need)
		}
	}
	var rows []importRow
	var problems []ImportProblem
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rows, problems, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		bad := func(column, msg string) {
			problems = append(problems, ImportProblem{Line: line, Column: column, Message: msg})
		}
		row := importRow{line: line, person: get("person_id"), name: get("name"), kind: get("kind"), unit: get("unit"), building: get("building"), unitName: get("unit_name")}
		if row.kind == "" {
			row.kind = "resident"
		}
		if err := CheckID("person", row.person); err != nil {
			bad("person_id", err.Error())
		}
		if row.name == "" || len(row.name) > 200 {
			bad("name", "a name is required (at most 200 characters)")
		}
		if !slices.Contains([]string{"resident", "visitor", "staff"}, row.kind) {
			bad("kind", "kind is resident, visitor or staff")
		}
		if row.unit != "" {
			if err := CheckID("unit", row.unit); err != nil {
				bad("unit", err.Error())
			}
			var err1, err2 error
			row.starts, err1 = importTime(get("lease_starts"), loc, false)
			row.ends, err2 = importTime(get("lease_ends"), loc, true)
			switch {
			case err1 != nil:
				bad("lease_starts", err1.Error())
			case err2 != nil:
				bad("lease_ends", err2.Error())
			case !row.ends.After(row.starts):
				bad("lease_ends", "the lease ends before it starts")
			default:
				row.hasLease = true
			}
		} else if get("lease_starts") != "" || get("lease_ends") != "" {
			bad("unit", "a lease needs its unit")
		}
		if v := get("card"); v != "" {
			if len(v) > 256 {
				bad("card", "a card number has at most 256 characters")
			} else {
				row.creds = append(row.creds, [2]string{KindCard, v})
			}
		}
		if v := get("pin"); v != "" {
			if len(v) < 4 || len(v) > 12 {
				bad("pin", "a PIN has 4 to 12 digits")
			} else {
				row.creds = append(row.creds, [2]string{KindPIN, v})
			}
		}
		if v := get("plate"); v != "" {
			p := plate.Normalize(v)
			if !plate.Valid(p, "") {
				bad("plate", fmt.Sprintf("%q is not a plate (a province, a letter, then 5 or 6 letters and digits)", v))
			} else {
				row.creds = append(row.creds, [2]string{KindPlate, p})
			}
		}
		rows = append(rows, row)
	}
	return rows, problems, nil
}

// importTime reads a date (2026-01-31) or a time (RFC 3339); a date that ends a lease means the
// end of that day.
func importTime(v string, loc *time.Location, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, errors.New("a lease needs its start and end")
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2026-01-31) or a time (2026-01-31T18:00:00+08:00)", v)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// ImportPeople reads an import file (loc: the zone of dates given without one), checks its rows
// against each other and the database and, unless dryRun or a problem was found, writes them in
// one transaction. progress may be nil.
func (e *Engine) ImportPeople(ctx context.Context, who auth.Actor, file io.Reader, loc *time.Location, dryRun bool, progress ImportProgress) (ImportReport, error) {
	start := time.Now()
	if progress == nil {
		progress = func(string, int, int) {}
	}
	progress("reading", 0, 0)
	rows, fileProblems, err := parseImport(file, loc)
	if err != nil {
		return ImportReport{}, err
	}
	rep := ImportReport{Rows: len(rows), DryRun: dryRun, Problems: fileProblems}
	plan, err := e.checkImport(ctx, rows, &rep, progress)
	if err != nil {
		return rep, err
	}
	if dryRun || rep.ProblemsAll > 0 {
		rep.TookMS = time.Since(start).Milliseconds()
		return rep, nil
	}
	creds, newUnits := plan.creds, plan.units
	detail := map[string]any{"rows": len(rows), "people": rep.People, "units": rep.Units, "credentials": rep.Credentials}
	err = e.change(ctx, who, "people.import", detail, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE import_people (id text, name text, kind text) ON COMMIT DROP;
			CREATE TEMP TABLE import_leases (person_id text, unit_id text, starts timestamptz, ends timestamptz) ON COMMIT DROP`); err != nil {
			return err
		}
		var people, leases, unitRows, credRows [][]any
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.person] {
				seen[r.person] = true
				people = append(people, []any{r.person, r.name, r.kind})
			}
			if r.hasLease {
				leases = append(leases, []any{r.person, r.unit, r.starts, r.ends})
			}
		}
		for id, u := range newUnits {
			unitRows = append(unitRows, []any{id, u[0], u[1]})
		}
		for _, c := range creds {
			credRows = append(credRows, []any{c.person, c.kind, c.hash[:], "hmac", e.secrets.seal(c.kind, c.value)})
		}
		steps := []struct {
			stage string
			table string
			cols  []string
			rows  [][]any
		}{
			{"people", "import_people", []string{"id", "name", "kind"}, people},
			{"units", "units", []string{"id", "name", "building"}, unitRows},
			{"leases", "import_leases", []string{"person_id", "unit_id", "starts", "ends"}, leases},
		}
		for _, st := range steps {
			if err := copyChunks(ctx, tx, st.table, st.cols, st.rows, func(done int) { progress(st.stage, done, len(st.rows)) }); err != nil {
				return fmt.Errorf("%s: %w", st.stage, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO people (id, name, kind) SELECT id, name, kind FROM import_people
			ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE people.name <> EXCLUDED.name`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO leases (person_id, unit_id, starts, ends)
			SELECT DISTINCT i.person_id, i.unit_id, i.starts, i.ends FROM import_leases i
			WHERE NOT EXISTS (SELECT 1 FROM leases l WHERE l.person_id = i.person_id AND l.unit_id = i.unit_id AND l.starts = i.starts AND l.ends = i.ends)`)
		if err != nil {
			return err
		}
		rep.Leases = int(tag.RowsAffected())
		return copyChunks(ctx, tx, "credentials", []string{"person_id", "kind", "secret_hash", "hash_alg", "secret_enc"}, credRows,
			func(done int) { progress("credentials", done, len(credRows)) })
	})
	rep.TookMS = time.Since(start).Milliseconds()
	return rep, err
}

// newCred is a credential an import adds.
type newCred struct {
	person, kind, value string
	hash                [32]byte
}

// importPlan is what an import adds beside the rows themselves: new credentials and units.
type importPlan struct {
	creds []newCred
	units map[string][2]string // id → name, building
}

// checkImport checks rows against each other and what is stored, adding the problems and the
// counts of what would be added to rep.
func (e *Engine) checkImport(ctx context.Context, rows []importRow, rep *ImportReport, progress ImportProgress) (importPlan, error) {
	s := e.snapshot()
	units := map[string]bool{}
	urows, err := e.pool.Query(ctx, `SELECT id FROM units`)
	if err != nil {
		return importPlan{}, err
	}
	var uid string
	if _, err := pgx.ForEachRow(urows, []any{&uid}, func() error { units[uid] = true; return nil }); err != nil {
		return importPlan{}, err
	}
	// Checks across rows and against what is stored.
	names := map[string]string{}
	newPeople := map[string]bool{}
	secrets := map[[32]byte]string{} // a secret's hash → the person the file gives it to
	var creds []newCred
	newUnits := map[string][2]string{}
	for i, r := range rows {
		if i%5000 == 0 {
			progress("checking", i, len(rows))
		}
		bad := func(column, msg string) {
			rep.Problems = append(rep.Problems, ImportProblem{Line: r.line, Column: column, Message: msg})
		}
		if n, ok := names[r.person]; ok && n != r.name {
			bad("name", fmt.Sprintf("person %s is named %q on an earlier line", r.person, n))
		}
		names[r.person] = r.name
		if p := s.people[r.person]; p == nil {
			if !newPeople[r.person] {
				rep.People++
				newPeople[r.person] = true
			}
		} else if p.kind != r.kind {
			bad("kind", fmt.Sprintf("person %s is a %s, not a %s", r.person, p.kind, r.kind))
		}
		if r.unit != "" && !units[r.unit] {
			if _, ok := newUnits[r.unit]; !ok {
				rep.Units++
			}
			newUnits[r.unit] = [2]string{r.unitName, r.building}
		}
		if r.hasLease {
			rep.Leases++ // less those already stored, counted by the import itself
		}
		for _, c := range r.creds {
			h := e.secrets.hash(c[0], c[1])
			if other, ok := secrets[h]; ok && other != r.person {
				bad(c[0], fmt.Sprintf("this %s is given to %s on an earlier line", c[0], other))
				continue
			}
			secrets[h] = r.person
			held := s.held(c[0], c[1])
			switch {
			case held != nil && held.person != r.person:
				bad(c[0], fmt.Sprintf("this %s is already issued to %s", c[0], held.person))
			case held == nil:
				creds = append(creds, newCred{person: r.person, kind: c[0], value: c[1], hash: h})
			}
		}
	}
	rep.Credentials = len(creds)
	rep.ProblemsAll = len(rep.Problems)
	if rep.Problems == nil {
		rep.Problems = []ImportProblem{}
	}
	slices.SortStableFunc(rep.Problems, func(a, b ImportProblem) int { return a.Line - b.Line })
	if len(rep.Problems) > MaxImportProblems {
		rep.Problems = rep.Problems[:MaxImportProblems]
	}
	progress("checking", len(rows), len(rows))
	return importPlan{creds: creds, units: newUnits}, nil
}

// copyChunks copies rows into a table 5,000 at a time, calling done after each chunk.
func copyChunks(ctx context.Context, tx pgx.Tx, table string, cols []string, rows [][]any, done func(int)) error {
	const chunk = 5000
	for i := 0; i < len(rows); i += chunk {
		j := min(i+chunk, len(rows))
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows[i:j])); err != nil {
			return err
		}
		done(j)
	}
	done(len(rows))
	return nil
}

// ExportPeople writes every person as the import reads them: one row per lease (a person without
// one on a row of their own), with their car plates. Card numbers and PINs are secrets and are
// not exported.
func (e *Engine) ExportPeople(ctx context.Context, w io.Writer) (int, error) {
	rows, err := e.pool.Query(ctx, `SELECT p.id, p.name, p.kind, coalesce(l.unit_id, ''), coalesce(u.building, ''), coalesce(u.name, ''), l.starts, l.ends
		FROM people p LEFT JOIN leases l ON l.person_id = p.id LEFT JOIN units u ON u.id = l.unit_id ORDER BY p.id, l.starts`)
	if err != nil {
		return 0, err
	}
	plates := map[string][]string{}
	s := e.snapshot()
	for _, c := range s.creds {
		if c.kind == KindPlate && c.enc != nil {
			if _, v, err := e.secrets.open(c.enc); err == nil {
				plates[c.person] = append(plates[c.person], v)
			}
		}
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"person_id", "name", "kind", "unit", "building", "unit_name", "lease_starts", "lease_ends", "plate"})
	n := 0
	var id, name, kind, unit, building, unitName string
	var starts, ends *time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &kind, &unit, &building, &unitName, &starts, &ends}, func() error {
		rec := []string{id, name, kind, unit, building, unitName, "", "", ""}
		if starts != nil {
			rec[6], rec[7] = starts.Format(time.RFC3339), ends.Format(time.RFC3339)
		}
		if ps := plates[id]; len(ps) > 0 {
			slices.Sort(ps)
			rec[8], plates[id] = ps[0], ps[1:] // one plate a row, the rest on the person's next rows
		}
		n++
		return cw.Write(rec)
	})
	cw.Flush()
	return n, errors.Join(err, cw.Error())
}
