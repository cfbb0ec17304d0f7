// Command import times the property office's bulk import of the site's residents (issue 19): a
// dry run of a file with seeded mistakes, the import of the corrected file (one transaction,
// progress as it goes), the same file again (nothing to add), and then what the imported site
// costs the doors: the engine's reload and a door's offline cache. The reference in the same run
// is a raw COPY of the same rows, hashed the same way, into a second fresh database.
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/testkit/residents"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/schema"
)

func main() {
	n := flag.Int("residents", 39000, "residents in the file")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "import bench:", err)
		os.Exit(1)
	}
}

func freshDB(ctx context.Context) (*pgxpool.Pool, func(), error) {
	url, drop, err := testenv.CreateDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		drop()
		return nil, nil, err
	}
	if _, err := schema.Migrate(ctx, pool); err != nil {
		pool.Close()
		drop()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); drop() }, nil
}

func run(n int) error {
	ctx := context.Background()
	pool, done, err := freshDB(ctx)
	if err != nil {
		return err
	}
	defer done()
	e, err := access.NewEngine(ctx, pool, audit.New(pool, ""), make([]byte, 32))
	if err != nil {
		return err
	}
	who := auth.Actor{Name: "bench", Role: auth.RoleProperty}
	now := time.Now()
	seeded, clean := residents.Make(n, now, true), residents.Make(n, now, false)
	fmt.Printf("file: %d residents, %d units, %d plates, %.1f MB\n", n, clean.Units, clean.Plates, float64(len(clean.CSV))/1e6)

	t := time.Now()
	rep, err := e.ImportPeople(ctx, who, bytes.NewReader(seeded.CSV), time.UTC, true, nil)
	if err != nil {
		return err
	}
	fmt.Printf("dry run (5 seeded mistakes): %v, %d problems found, lines %v\n", time.Since(t).Round(time.Millisecond), rep.ProblemsAll, lines(rep.Problems))
	stages := 0
	t = time.Now()
	rep, err = e.ImportPeople(ctx, who, bytes.NewReader(clean.CSV), time.UTC, false, func(string, int, int) { stages++ })
	if err != nil {
		return err
	}
	imp := time.Since(t)
	fmt.Printf("import: %v (%.0f rows/s; %d people, %d units, %d leases, %d credentials; %d progress reports)\n",
		imp.Round(time.Millisecond), float64(n)/imp.Seconds(), rep.People, rep.Units, rep.Leases, rep.Credentials, stages)
	t = time.Now()
	rep, err = e.ImportPeople(ctx, who, bytes.NewReader(clean.CSV), time.UTC, false, nil)
	if err != nil {
		return err
	}
	fmt.Printf("the same file again: %v (%d added)\n", time.Since(t).Round(time.Millisecond), rep.People+rep.Leases+rep.Credentials)
	t = time.Now()
	if err := e.Reload(ctx); err != nil {
		return err
	}
	fmt.Printf("engine reload with %d people: %v\n", n, time.Since(t).Round(time.Millisecond))
	if _, err := e.AddDoor(ctx, who, access.Door{ID: "b01-lobby"}); err != nil {
		return err
	}
	if err := e.AddRule(ctx, who, "b01-lobby", "kind", "resident", ""); err != nil {
		return err
	}
	t = time.Now()
	c, err := e.Cache(ctx, "b01-lobby", 0)
	if err != nil {
		return err
	}
	fmt.Printf("a door open to every resident: offline cache of %d credentials in %v\n", len(c.Credentials), time.Since(t).Round(time.Millisecond))
	// A building's door: a rule per unit of building b01 (written straight to the table: the
	// admin API's reload per rule is not what is measured).
	if _, err := e.AddDoor(ctx, who, access.Door{ID: "b01-units"}); err != nil {
		return err
	}
	tag, err := pool.Exec(ctx, `INSERT INTO rules (door_id, who_kind, who) SELECT 'b01-units', 'unit', id FROM units WHERE building = 'b01'`)
	if err != nil {
		return err
	}
	if err := e.Reload(ctx); err != nil {
		return err
	}
	t = time.Now()
	if c, err = e.Cache(ctx, "b01-units", 0); err != nil {
		return err
	}
	fmt.Printf("a building's door with a rule per unit (%d rules): offline cache of %d credentials in %v\n", tag.RowsAffected(), len(c.Credentials), time.Since(t).Round(time.Millisecond))

	// Reference: the same rows COPYed raw into a fresh database.
	ref, done2, err := freshDB(ctx)
	if err != nil {
		return err
	}
	defer done2()
	t = time.Now()
	if err := rawCopy(ctx, ref, clean); err != nil {
		return err
	}
	raw := time.Since(t)
	fmt.Printf("reference, raw COPY of the same rows: %v; the import takes %.1f× that\n", raw.Round(time.Millisecond), imp.Seconds()/raw.Seconds())
	return nil
}

func lines(ps []access.ImportProblem) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.Line)
	}
	return out
}

// rawCopy writes the site's rows straight into the tables, as the import would leave them.
func rawCopy(ctx context.Context, pool *pgxpool.Pool, site residents.Site) error {
	rows, err := parseForReference(site.CSV)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, t := range rows {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
				return fmt.Errorf("%s: %w", t.table, err)
			}
		}
		return nil
	})
}

type table struct {
	table string
	cols  []string
	rows  [][]any
}

// parseForReference reads the generated file into the tables' rows (SHA-256 secrets, no sealing).
func parseForReference(b []byte) ([]table, error) {
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, err
	}
	people := table{"people", []string{"id", "name", "kind"}, nil}
	units := table{"units", []string{"id", "name", "building"}, nil}
	leases := table{"leases", []string{"person_id", "unit_id", "starts", "ends"}, nil}
	creds := table{"credentials", []string{"person_id", "kind", "secret_hash"}, nil}
	seen := map[string]bool{}
	for _, r := range recs[1:] { // person_id, name, kind, unit, building, unit_name, lease_starts, lease_ends, card, plate
		people.rows = append(people.rows, []any{r[0], r[1], r[2]})
		if !seen[r[3]] {
			seen[r[3]] = true
			units.rows = append(units.rows, []any{r[3], r[5], r[4]})
		}
		s, _ := time.Parse(time.DateOnly, r[6])
		e, _ := time.Parse(time.DateOnly, r[7])
		leases.rows = append(leases.rows, []any{r[0], r[3], s, e.AddDate(0, 0, 1)})
		h := access.SecretKey("card", r[8])
		creds.rows = append(creds.rows, []any{r[0], "card", h[:]})
		if r[9] != "" {
			h := access.SecretKey("plate", r[9])
			creds.rows = append(creds.rows, []any{r[0], "plate", h[:]})
		}
	}
	return []table{people, units, leases, creds}, nil
}
