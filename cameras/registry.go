// Package cameras is the camera registry: every camera of the site in PostgreSQL, changed at run
// time through the API and `vigil cameras` (audited), seeded from the configuration's cameras, and
// watched by every node (LISTEN/NOTIFY on vigil_cameras), which runs what it says.
package cameras

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/storage/pgnotify"
)

// Camera is one registered camera.
type Camera struct {
	ID  string `json:"id" yaml:"id"`
	URL string `json:"url" yaml:"url"` // rtsp://[user:pass@]host/path; Redacted hides the password
	// DetectURL is a sub-stream for analysis, when the camera has one (optional).
	DetectURL   string      `json:"detect_url,omitempty" yaml:"detect_url"`
	Analyse     string      `json:"analyse" yaml:"analyse"` // faces, plates, both or none
	Transport   string      `json:"transport,omitempty" yaml:"transport"`
	FPS         float64     `json:"fps,omitempty" yaml:"fps"`
	IdleFPS     float64     `json:"idle_fps,omitempty" yaml:"idle_fps"`
	FootageDays int         `json:"footage_days,omitempty" yaml:"footage_days"`
	Map         *[2]float64 `json:"map,omitempty" yaml:"map"`
	// Masks are the camera's privacy masks (config.Camera.Masks).
	Masks         privacy.Masks `json:"masks,omitempty" yaml:"masks"`
	MaskRecording bool          `json:"mask_recording,omitempty" yaml:"mask_recording"`
	Updated       time.Time     `json:"updated_at,omitzero" yaml:"-"`
}

// Redacted is the camera with its URLs' passwords hidden: what the API answers.
func (c Camera) Redacted() Camera {
	c.URL = config.RedactURL(c.URL)
	if c.DetectURL != "" {
		c.DetectURL = config.RedactURL(c.DetectURL)
	}
	return c
}

// Config is the camera as the node's configuration type has it.
func (c Camera) Config() config.Camera {
	return config.Camera{ID: c.ID, URL: config.SecretURL(c.URL), DetectURL: config.SecretURL(c.DetectURL), Transport: c.Transport, Analyse: c.Analyse, FPS: c.FPS, IdleFPS: c.IdleFPS,
		FootageDays: c.FootageDays, Map: c.Map, Masks: c.Masks, MaskRecording: c.MaskRecording}
}

// FromConfig is a configured camera as a registry entry.
func FromConfig(c config.Camera) Camera {
	a := c.Analyse
	if a == "" {
		a = "both"
	}
	return Camera{ID: c.ID, URL: c.URL.Reveal(), DetectURL: c.DetectURL.Reveal(), Transport: c.Transport, Analyse: a, FPS: c.FPS, IdleFPS: c.IdleFPS, FootageDays: c.FootageDays, Map: c.Map, Masks: c.Masks, MaskRecording: c.MaskRecording}
}

// Errors.
var (
	ErrInvalid  = errors.New("cameras: invalid")
	ErrExists   = errors.New("cameras: already registered")
	ErrNotFound = errors.New("cameras: no such camera")
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Check validates a camera and fills its defaults (analyse both).
func Check(c *Camera) error {
	var bad []string
	if !idPattern.MatchString(c.ID) {
		bad = append(bad, fmt.Sprintf("id %q: 1–64 letters, digits, '.', '_' or '-'", c.ID))
	}
	for _, u := range []struct{ name, v string }{{"url", c.URL}, {"detect_url", c.DetectURL}} {
		if u.v == "" && u.name == "detect_url" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "rtsp" && p.Scheme != "rtsps") || p.Host == "" {
			bad = append(bad, fmt.Sprintf("%s: want rtsp://[user:pass@]host[:port]/path", u.name))
		}
	}
	if c.Analyse == "" {
		c.Analyse = "both"
	}
	if !slices.Contains([]string{"faces", "plates", "both", "none"}, c.Analyse) {
		bad = append(bad, fmt.Sprintf("analyse %q: faces, plates, both or none", c.Analyse))
	}
	if !slices.Contains([]string{"", "tcp", "udp"}, c.Transport) {
		bad = append(bad, fmt.Sprintf("transport %q: tcp or udp", c.Transport))
	}
	if c.FPS < 0 || c.FPS > 30 {
		bad = append(bad, fmt.Sprintf("fps %v: 0 (the pipeline's) to 30", c.FPS))
	}
	if c.IdleFPS < 0 || c.IdleFPS > 30 {
		bad = append(bad, fmt.Sprintf("idle_fps %v: 0 (always fps) to 30", c.IdleFPS))
	}
	if c.FootageDays < 0 {
		bad = append(bad, "footage_days must not be negative")
	}
	if err := c.Masks.Check(); err != nil {
		bad = append(bad, "masks: "+err.Error())
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(bad, "; "))
	}
	return nil
}

// Auditor writes a change and its audit row in one transaction (audit.Chain).
type Auditor interface {
	Change(ctx context.Context, e audit.Entry, detail func() json.RawMessage, fn func(tx pgx.Tx) error) (int64, error)
}

// Registry is the camera table.
type Registry struct {
	pool  *pgxpool.Pool
	trail Auditor
}

// New returns the registry on pool; changes are audited on trail.
func New(pool *pgxpool.Pool, trail Auditor) *Registry { return &Registry{pool: pool, trail: trail} }

const columns = `id, url, coalesce(detect_url, ''), analysis, transport, fps, footage_days, map_x, map_y, masks, mask_recording, updated_at`

func scan(r pgx.CollectableRow) (Camera, error) {
	var c Camera
	var x, y *float64
	var fps float32
	err := r.Scan(&c.ID, &c.URL, &c.DetectURL, &c.Analyse, &c.Transport, &fps, &c.FootageDays, &x, &y, &c.Masks, &c.MaskRecording, &c.Updated)
	c.FPS = float64(fps)
	if x != nil && y != nil {
		c.Map = &[2]float64{*x, *y}
	}
	return c, err
}

// List returns every camera, by id.
func (r *Registry) List(ctx context.Context) ([]Camera, error) {
	rows, _ := r.pool.Query(ctx, `SELECT `+columns+` FROM cameras ORDER BY id`)
	return pgx.CollectRows(rows, scan)
}

// Get returns one camera (ErrNotFound when it is not registered).
func (r *Registry) Get(ctx context.Context, id string) (Camera, error) {
	rows, _ := r.pool.Query(ctx, `SELECT `+columns+` FROM cameras WHERE id = $1`, id)
	c, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return c, err
}

// Add registers a new camera (ErrExists when its id is taken).
func (r *Registry) Add(ctx context.Context, who auth.Actor, c Camera) error {
	return r.write(ctx, who, "camera.add", c, `INSERT INTO cameras (id, url, detect_url, analysis, transport, fps, footage_days, map_x, map_y, masks, mask_recording)
		VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7, $8, $9, $10, coalesce($11, false))`)
}

// Update replaces a registered camera (ErrNotFound when there is none).
func (r *Registry) Update(ctx context.Context, who auth.Actor, c Camera) error {
	return r.write(ctx, who, "camera.update", c, `UPDATE cameras SET url = $2, detect_url = nullif($3, ''), analysis = $4, transport = $5,
		fps = $6, footage_days = $7, map_x = $8, map_y = $9, masks = coalesce($10, masks),
		mask_recording = coalesce($11, mask_recording), updated_at = now() WHERE id = $1`)
}

func (r *Registry) write(ctx context.Context, who auth.Actor, action string, c Camera, query string) error {
	if err := Check(&c); err != nil {
		return err
	}
	var x, y *float64
	if c.Map != nil {
		x, y = &c.Map[0], &c.Map[1]
	}
	return r.change(ctx, who, action, c.Redacted(), func(tx pgx.Tx) error {
		var masks, record any // an update without masks keeps the camera's
		if c.Masks != nil {
			masks, record = c.Masks, c.MaskRecording
		} else if strings.HasPrefix(query, "INSERT") {
			masks = privacy.Masks{}
		}
		tag, err := tx.Exec(ctx, query, c.ID, c.URL, c.DetectURL, c.Analyse, c.Transport, c.FPS, c.FootageDays, x, y, masks, record)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%w: %s", ErrNotFound, c.ID)
		}
		return err
	})
}

// SetMasks replaces a camera's privacy masks (none: nil or empty), audited with the polygons;
// record masks the recording itself from now on. Every node running the camera restarts its
// analysis and recording with them.
func (r *Registry) SetMasks(ctx context.Context, who auth.Actor, id string, m privacy.Masks, record bool) error {
	if err := m.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if m == nil {
		m = privacy.Masks{}
	}
	return r.change(ctx, who, "camera.masks", map[string]any{"id": id, "polygons": m, "record": record}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE cameras SET masks = $2, mask_recording = $3, updated_at = now() WHERE id = $1`, id, m, record && len(m) > 0)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return err
	})
}

// Remove unregisters a camera: every node stops it within seconds. Its footage and events stay.
func (r *Registry) Remove(ctx context.Context, who auth.Actor, id string) error {
	return r.change(ctx, who, "camera.remove", map[string]string{"id": id}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM cameras WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return err
	})
}

// Seed registers the cameras the configuration lists that the registry lacks (the YAML
// `cameras:` list seeds it; once registered, the registry is what counts). It returns how many
// were added.
func (r *Registry) Seed(ctx context.Context, cams []config.Camera) (int, error) {
	added := 0
	for _, cc := range cams {
		c := FromConfig(cc)
		err := r.Add(ctx, auth.Actor{Name: "configuration", Role: auth.RoleAdmin}, c)
		switch {
		case errors.Is(err, ErrExists):
		case err != nil:
			return added, fmt.Errorf("camera %s: %w", c.ID, err)
		default:
			added++
		}
	}
	return added, nil
}

// change runs one write and its audit row in one transaction, and tells every node.
func (r *Registry) change(ctx context.Context, who auth.Actor, action string, detail any, fn func(tx pgx.Tx) error) error {
	d, _ := json.Marshal(detail)
	_, err := r.trail.Change(ctx, audit.Entry{Actor: who.Name, Role: who.Role, Action: action, Detail: d}, nil, audit.Notifying(ctx, "vigil_cameras", fn))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrExists, pgErr.Detail)
		case "23514", "22P02":
			return fmt.Errorf("%w: %s", ErrInvalid, pgErr.Message)
		}
	}
	return err
}

// Watch calls fn with every camera now, after every change any process makes (NOTIFY
// vigil_cameras), and every minute in any case, until ctx ends. Changes that come in a burst (an
// import of 1,000 cameras) are read once they pause for 200 ms, not once each. A list that cannot
// be read is logged and fn keeps what it had.
func (r *Registry) Watch(ctx context.Context, log *slog.Logger, fn func([]Camera)) {
	load := func() {
		cs, err := r.List(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("camera registry not read", "err", err)
			}
			return
		}
		fn(cs)
	}
	kick := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			for quiet := false; !quiet; { // wait for the burst to pause
				select {
				case <-ctx.Done():
					return
				case <-kick:
				case <-time.After(200 * time.Millisecond):
					quiet = true
				}
			}
			load()
		}
	}()
	pgnotify.Listen(ctx, r.pool, "vigil_cameras", "camera registry watch", log, pgnotify.Handlers{
		OnListen: func(context.Context, *pgxpool.Conn) error { load(); return nil },
		OnNotify: func(string) {
			select {
			case kick <- struct{}{}:
			default:
			}
		},
		OnIdle: load,
		Idle:   time.Minute,
	})
	<-done
}
