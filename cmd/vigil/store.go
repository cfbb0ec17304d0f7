package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/footage"
	"github.com/vigil-oss/vigil/storage/pgcluster"
	"github.com/vigil-oss/vigil/storage/schema"
)

// storage is the node's event store: PostgreSQL (configured, or its own cluster) and blobs.
type storage struct {
	cluster *pgcluster.Cluster
	pool    *pgxpool.Pool
	events  *events.Store
	blobs   blob.Store
	spool   *blob.Spooled // with S3: where writes go while it is down
}

// openStore connects to database.url, or starts the managed cluster under DATA/pg, and applies
// the migrations. With database.enabled false it returns an empty storage.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*storage, error) {
	st := &storage{}
	if !cfg.Database.Enabled {
		return st, nil
	}
	url := cfg.Database.URL.Reveal()
	if url == "" {
		c, err := pgcluster.Start(ctx, filepath.Join(cfg.Data, "pg"), log)
		if err != nil {
			return nil, fmt.Errorf("event store: %w", err)
		}
		st.cluster, url = c, c.URL()
	}
	pcfg, err := migrate(ctx, url, cfg.Database.AppURL.Reveal(), log)
	if err != nil {
		st.Close()
		return nil, err
	}
	// From here on vigil logs in as the application role: it may only read and append the audit
	// chain (schema.Protect).
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err == nil {
		if err = schema.CheckApp(ctx, pool); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("event store: connecting as %s: %w", schema.AppRole, err)
	}
	st.pool = pool
	st.events = events.New(pool)
	if err := st.events.EnsureAhead(ctx, time.Now(), 7); err != nil {
		st.Close()
		return nil, err
	}
	if s3 := cfg.Blobs.S3; s3.Endpoint != "" {
		primary, err := blob.NewS3(ctx, blob.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey,
			SecretKey: s3.SecretKey.Reveal(), Secure: s3.Secure})
		if err != nil {
			st.Close()
			return nil, err
		}
		st.spool = &blob.Spooled{Primary: primary, Spool: blob.FS{Root: filepath.Join(cfg.Data, "spool")}, Log: log,
			MaxBytes: cfg.Blobs.SpoolMaxMB << 20}
		st.blobs = st.spool
	} else {
		st.blobs = blob.FS{Root: filepath.Join(cfg.Data, "blobs")}
	}
	return st, nil
}

// migrate applies the migrations and the roles' protection as the configured user, and returns
// how the application connects. Configured to log in as the application role already (the
// deployment where vigil never holds the owner's password), it only checks that someone ran
// `vigil migrate` as the owner.
func migrate(ctx context.Context, url, appURL string, log *slog.Logger) (*pgxpool.Config, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("event store: %s: %w", config.RedactURL(url), err)
	}
	defer pool.Close()
	if pool.Config().ConnConfig.User == schema.AppRole {
		have, err := schema.Current(ctx, pool)
		if err != nil {
			return nil, fmt.Errorf("event store: %w", err)
		}
		if have < schema.Latest() {
			return nil, fmt.Errorf("event store: the database is at migration %d and this vigil needs %d: run `vigil migrate` with the owner's database.url", have, schema.Latest())
		}
		return pool.Config(), nil
	}
	applied, err := schema.Migrate(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("event store: migrate: %w", err)
	}
	if len(applied) > 0 {
		log.Info("event store migrated", "versions", applied)
	}
	if err := schema.Protect(ctx, pool); err != nil {
		return nil, fmt.Errorf("event store: protecting the audit chain: %w (the database user needs CREATEROLE, or be a superuser)", err)
	}
	pcfg, err := schema.AppConfig(url, appURL)
	if err != nil {
		return nil, fmt.Errorf("event store: database.app_url: %w", err)
	}
	return pcfg, nil
}

// makeDataDir creates the data directory and any missing parents. As root, the folders it
// creates are searchable by everyone (0711), since the managed PostgreSQL runs as another user
// and must reach DATA/pg through them; otherwise they are private (0700). Folders that exist are
// left as they are.
func makeDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var missing []string
	for p := abs; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		missing = append(missing, p)
	}
	mode := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		mode = 0o711
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], mode); err != nil && !os.IsExist(err) {
			return fmt.Errorf("data directory: %w", err)
		}
		if err := os.Chmod(missing[i], mode); err != nil { // past the umask
			return fmt.Errorf("data directory: %w", err)
		}
	}
	return nil
}

// maintain creates partitions ahead and drops expired ones, applies footage retention, hourly,
// and uploads spooled blobs.
func (st *storage) maintain(ctx context.Context, cfg config.Config, log *slog.Logger) {
	retentionDays := cfg.Database.RetentionDays
	if st.spool != nil {
		go st.spool.Run(ctx, 10*time.Second)
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := st.events.EnsureAhead(ctx, time.Now(), 7); err != nil && ctx.Err() == nil {
			log.Warn("creating event partitions", "err", err)
		}
		if dropped, err := st.events.DropBefore(ctx, time.Now().AddDate(0, 0, -retentionDays)); err != nil && ctx.Err() == nil {
			log.Warn("event retention", "err", err)
		} else if len(dropped) > 0 {
			log.Info("event retention dropped partitions", "partitions", dropped)
		}
		for _, cam := range cfg.Cameras {
			pol := footage.Policy{Days: cfg.Footage.RetentionDays, MaxBytes: cfg.Footage.MaxMBPerCamera << 20}
			if cam.FootageDays > 0 {
				pol.Days = cam.FootageDays
			}
			n, freed, err := footage.PGIndex{Pool: st.pool}.Retain(ctx, st.blobs, cam.ID, pol, time.Now())
			if err != nil && ctx.Err() == nil {
				log.Warn("footage retention", "camera", cam.ID, "err", err)
			} else if n > 0 {
				log.Info("footage retention", "camera", cam.ID, "segments", n, "bytes", freed)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close closes the pool and gives up the managed cluster (stopped when no other vigil process
// uses it).
func (st *storage) Close() {
	if st.pool != nil {
		st.pool.Close()
	}
	if st.cluster != nil {
		st.cluster.Stop()
	}
}

// openToolStore opens the database for a short-lived command.
func openToolStore(ctx context.Context, cfg config.Config, stderr io.Writer) (*storage, error) {
	cfg.Database.Enabled = true
	return openStore(ctx, cfg, newLogger(stderr, cfg.Log.Level, cfg.Log.Format))
}

// cmdMigrate applies the event store's migrations and exits.
func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig("migrate", args)
	if err != nil {
		return err
	}
	st, err := openToolStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "event store at schema version %d\n", schema.Latest())
	return nil
}
