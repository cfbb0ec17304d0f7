package schema_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/schema"
)

// Every domain's migrations apply in one order, once: a second run applies nothing.
func TestMigrateAppliesEveryDomainOnce(t *testing.T) {
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	domains := map[string]int{}
	for i, m := range ms {
		domains[m.Domain]++
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Fatalf("%s/%s out of order", m.Domain, m.Name)
		}
	}
	if domains["events"] == 0 || domains["access"] == 0 || domains["dispatch"] == 0 {
		t.Fatalf("domains found: %v", domains)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	applied, err := schema.Migrate(ctx, pool)
	if err != nil || len(applied) != len(ms) || applied[len(applied)-1] != schema.Latest() {
		t.Fatalf("first run applied %v (%v), want all %d", applied, err, len(ms))
	}
	for _, table := range []string{"events", "segments", "audit", "principals", "doors", "face_templates", "dispatches", "map_items"} {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing after migration (%v)", table, err)
		}
	}
	if again, err := schema.Migrate(ctx, pool); err != nil || len(again) != 0 {
		t.Fatalf("second run applied %v (%v)", again, err)
	}
}

// TestAppRoleOnlyAppendsTheAudit: after Protect, a connection logged in as the application role
// (as serve's are) may read and append the audit chain and do its work elsewhere, but not
// update, delete, truncate the chain or switch its triggers off, nor become a role that can.
func TestAppRoleOnlyAppendsTheAudit(t *testing.T) {
	ctx := context.Background()
	owner := testenv.Pool(t)
	if err := schema.Protect(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if err := schema.Protect(ctx, owner); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := schema.CheckApp(ctx, owner); !errors.Is(err, schema.ErrPrivileged) {
		t.Fatalf("the owner's login passes as the application's: %v", err)
	}
	cfg, err := schema.AppConfig(owner.Config().ConnString(), "")
	if err != nil {
		t.Fatal(err)
	}
	app, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var who string
	app.QueryRow(ctx, `SELECT session_user`).Scan(&who)
	if who != schema.AppRole {
		t.Fatalf("logged in as %q", who)
	}
	if err := schema.CheckApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if v, err := schema.Current(ctx, app); err != nil || v != schema.Latest() {
		t.Fatalf("the app role reads migration %d (%v), want %d", v, err, schema.Latest())
	}
	allowed := []string{
		`INSERT INTO audit (seq, time, actor, role, action, prev_hash, hash) VALUES (1, now(), 'a', 'admin', 'x', '\x00', '\x01')`,
		`INSERT INTO audit_head (seq, hash) VALUES (1, '\x01') ON CONFLICT (one) DO UPDATE SET seq = 1`,
		`SELECT count(*) FROM audit`,
		`INSERT INTO units (id, name, building) VALUES ('u1', 'u1', 'b1')`,
		`DELETE FROM units WHERE id = 'u1'`,
		`CREATE TABLE events_20990101 PARTITION OF events FOR VALUES FROM ('2099-01-01') TO ('2099-01-02')`,
		`DROP TABLE events_20990101`,
	}
	for _, q := range allowed {
		if _, err := app.Exec(ctx, q); err != nil {
			t.Errorf("the app role may %q: %v", q, err)
		}
	}
	refused := []string{
		`DELETE FROM audit`,
		`UPDATE audit SET reason = 'x'`,
		`TRUNCATE audit`,
		`ALTER TABLE audit DISABLE TRIGGER audit_append_only`,
		`DROP TABLE audit`,
		`DELETE FROM audit_checkpoints`,
		`UPDATE audit_checkpoints SET seq = 0`,
		`SET ROLE ` + schema.AuditOwner,
		`RESET ROLE; DELETE FROM audit`,
		`SET SESSION AUTHORIZATION DEFAULT; DELETE FROM audit`,
		`ALTER ROLE ` + schema.AppRole + ` SUPERUSER`,
		`GRANT ` + schema.AuditOwner + ` TO ` + schema.AppRole,
	}
	for _, q := range refused {
		if _, err := app.Exec(ctx, q); err == nil {
			t.Errorf("the app role may %q", q)
		}
	}
}
