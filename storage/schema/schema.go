// Package schema applies every domain's migrations to one PostgreSQL database in one order:
// each domain keeps its own *.sql files beside its code (storage/events, access, dispatch), and
// a version number is unique across all of them.
package schema

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	accessmig "github.com/vigil-oss/vigil/access/migrations"
	camerasmig "github.com/vigil-oss/vigil/cameras/migrations"
	dispatchmig "github.com/vigil-oss/vigil/dispatch/migrations"
	eventsmig "github.com/vigil-oss/vigil/storage/events/migrations"
)

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Domain  string
	Name    string
	SQL     string
}

// domains lists every domain's migrations.
var domains = []struct {
	name string
	fsys fs.FS
}{
	{"events", eventsmig.FS},
	{"access", accessmig.FS},
	{"dispatch", dispatchmig.FS},
	{"cameras", camerasmig.FS},
}

// Migrations returns every domain's migrations in version order. Two files with one version
// are an error: the order would be ambiguous.
func Migrations() ([]Migration, error) {
	var out []Migration
	seen := map[int]string{}
	for _, d := range domains {
		names, err := fs.Glob(d.fsys, "*.sql")
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
			if err != nil {
				return nil, fmt.Errorf("schema: %s migration %s has no version prefix", d.name, name)
			}
			if other, dup := seen[v]; dup {
				return nil, fmt.Errorf("schema: version %d is used by %s and %s/%s", v, other, d.name, name)
			}
			seen[v] = d.name + "/" + name
			b, err := fs.ReadFile(d.fsys, name)
			if err != nil {
				return nil, err
			}
			out = append(out, Migration{Version: v, Domain: d.name, Name: name, SQL: string(b)})
		}
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}

// Latest is the newest version.
func Latest() int {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// lock is the advisory lock key that serialises concurrent migrators (several nodes starting at
// once).
const lock = 7_117_105_108 // "vigil"

// Migrate applies every migration not yet applied, each in its own transaction, and returns the
// versions it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lock); err != nil {
		return nil, err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&exists); err != nil {
			return applied, err
		}
		if exists {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %s/%s: %w", m.Domain, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}
