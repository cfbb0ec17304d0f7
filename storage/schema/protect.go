package schema

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AppRole is the role vigil's processes log in as once migrated (AppConfig): it owns every
// table but the audit chain's, on which it may only SELECT and INSERT (and move the chain's
// head). The audit tables belong to AuditOwner, a role nobody logs in as and AppRole is no member
// of, so that a compromised vigil (or an SQL mistake) cannot disable their triggers, rewrite or
// cut them: AppRole is a login of its own, not a SET ROLE that RESET ROLE would undo.
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
	for role, login := range map[string]string{AppRole: "LOGIN", AuditOwner: "NOLOGIN"} {
		// Roles are the server's, shared by its databases: another database may be making it now.
		if _, err := conn.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s %s; END IF;
			EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`, role, role, login)); err != nil {
			return fmt.Errorf("schema: role %s: %w", role, err)
		}
	}
	stmts := []string{
		// Made NOLOGIN by an older vigil, and never anything more than a plain login.
		`ALTER ROLE ` + AppRole + ` LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS`,
		`REVOKE ` + AuditOwner + ` FROM ` + AppRole,
		// The migrating user acts for both roles (ownership changes, future migrations).
		`DO $$ BEGIN EXECUTE format('GRANT %I, %I TO %I', '` + AppRole + `', '` + AuditOwner + `', current_user);
			EXCEPTION WHEN others THEN NULL; END $$`,
		`GRANT USAGE, CREATE ON SCHEMA public TO ` + AppRole,
		`GRANT SELECT ON schema_migrations TO ` + AppRole, // so that it can tell the schema is current
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

// AppConfig is how vigil's processes connect once the database is migrated: as AppRole, on
// appURL when it is set (a password of its own, another host), else on the migrating user's
// connection with that user and password replaced (trust or peer authentication, the managed
// cluster).
func AppConfig(ownerURL, appURL string) (*pgxpool.Config, error) {
	if appURL != "" {
		return pgxpool.ParseConfig(appURL)
	}
	cfg, err := pgxpool.ParseConfig(ownerURL)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.User, cfg.ConnConfig.Password = AppRole, ""
	return cfg, nil
}

// ErrPrivileged means a connection meant for the application could act on the audit chain's
// tables as their owner.
var ErrPrivileged = errors.New("schema: this login can rewrite the audit chain")

// CheckApp refuses a pool whose login is a superuser, or may act as AuditOwner: vigil's own
// connections must not be able to undo the audit chain's protection.
func CheckApp(ctx context.Context, pool *pgxpool.Pool) error {
	var who string
	var super, audit bool
	err := pool.QueryRow(ctx, `SELECT session_user, r.rolsuper, pg_has_role(session_user, $1, 'USAGE')
		FROM pg_roles r WHERE r.rolname = session_user`, AuditOwner).Scan(&who, &super, &audit)
	if err != nil {
		return err
	}
	if super || audit {
		return fmt.Errorf("%w: %q is a superuser or may act as %s (log in as %s)", ErrPrivileged, who, AuditOwner, AppRole)
	}
	return nil
}

// Current is the newest migration applied, 0 for none.
func Current(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var v int
	err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return 0, nil
	}
	return v, err
}
