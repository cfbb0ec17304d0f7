package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppRole is the role vigil's processes act as once migrated (SET ROLE on every connection):
// it owns every table but the audit chain's, on which it may only SELECT and INSERT (and move
// the chain's head). The audit tables belong to AuditOwner, a role nobody logs in as, so that a
// compromised vigil (or an SQL mistake) cannot disable their triggers, rewrite or cut them.
const (
	AppRole    = "vigil_app"
	AuditOwner = "vigil_audit"
)

// auditTables and what AppRole may do with each.
var auditTables = map[string]string{
	"audit":             "SELECT, INSERT",
	"audit_head":        "SELECT, INSERT, UPDATE",
	"audit_checkpoints": "SELECT, INSERT",
}

// Protect makes the roles (once per server) and gives the tables to them; run it after Migrate,
// as the migrating user, which must be a superuser or have CREATEROLE. It is idempotent and
// handles tables created since (new partitions, new migrations).
func Protect(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lock); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lock)
	for _, role := range []string{AppRole, AuditOwner} {
		// Roles are the server's, shared by its databases: another database may be making it now.
		if _, err := conn.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s NOLOGIN; END IF;
			EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`, role, role)); err != nil {
			return fmt.Errorf("schema: role %s: %w", role, err)
		}
	}
	stmts := []string{
		// The migrating user acts for both roles (ownership changes, future migrations).
		`DO $$ BEGIN EXECUTE format('GRANT %I, %I TO %I', '` + AppRole + `', '` + AuditOwner + `', current_user);
			EXCEPTION WHEN others THEN NULL; END $$`,
		`GRANT USAGE, CREATE ON SCHEMA public TO ` + AppRole,
	}
	for _, st := range stmts {
		if _, err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`) // tables, partitioned tables and their partitions
	if err != nil {
		return err
	}
	type table struct{ name, owner string }
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		return t, r.Scan(&t.name, &t.owner)
	})
	if err != nil {
		return err
	}
	for _, t := range tables {
		owner := AppRole
		if _, ok := auditTables[t.name]; ok {
			owner = AuditOwner
		}
		if t.name == "schema_migrations" || t.owner == owner {
			continue
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s OWNER TO %s`, pgx.Identifier{t.name}.Sanitize(), owner)); err != nil {
			return fmt.Errorf("schema: giving %s to %s: %w", t.name, owner, err)
		}
	}
	for name, privs := range auditTables {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`REVOKE ALL ON %s FROM %s; GRANT %s ON %s TO %s`, name, AppRole, privs, name, AppRole)); err != nil {
			return fmt.Errorf("schema: %s: %w", name, err)
		}
	}
	return nil
}

// AsApp makes a pool's connections act as AppRole (pool config's AfterConnect).
func AsApp(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SET ROLE `+AppRole)
	return err
}
