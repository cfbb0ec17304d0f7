package schema_test

import (
	"context"
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
