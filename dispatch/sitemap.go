package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // site plans are JPEG or PNG
	_ "image/png"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
)

// MaxPlanBytes bounds an uploaded site plan.
const MaxPlanBytes = 16 << 20

// Item is a camera, a door or a sensor placed on the site plan (fractions of its width and height).
type Item struct {
	Kind string  `json:"kind"` // camera, door or sensor
	ID   string  `json:"id"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
}

// Plan describes the uploaded site plan.
type Plan struct {
	ContentType string    `json:"content_type"`
	Width       int       `json:"width"`
	Height      int       `json:"height"`
	UpdatedBy   string    `json:"updated_by"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// SetPlan stores the site plan image after checking it decodes (JPEG or PNG, at most 16 MB and
// 12,000 pixels a side).
func (s *Service) SetPlan(ctx context.Context, who auth.Actor, img []byte) (*Plan, error) {
	if len(img) > MaxPlanBytes {
		return nil, fmt.Errorf("%w: the plan is larger than %d MB", ErrInvalid, MaxPlanBytes>>20)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("%w: the plan is not a JPEG or PNG image (%v)", ErrInvalid, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > 12000 || cfg.Height > 12000 {
		return nil, fmt.Errorf("%w: the plan is %dx%d; at most 12000 pixels a side", ErrInvalid, cfg.Width, cfg.Height)
	}
	if _, _, err := image.Decode(bytes.NewReader(img)); err != nil { // a truncated body decodes its header only
		return nil, fmt.Errorf("%w: the plan image is damaged (%v)", ErrInvalid, err)
	}
	p := &Plan{ContentType: "image/" + format, Width: cfg.Width, Height: cfg.Height, UpdatedBy: who.Name}
	err = s.change(ctx, who, "map.plan", "", map[string]any{"bytes": len(img), "width": cfg.Width, "height": cfg.Height}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO site_plan (content_type, image, width, height, updated_by) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (one) DO UPDATE SET content_type = $1, image = $2, width = $3, height = $4, updated_by = $5, updated_at = now()
			RETURNING updated_at`, p.ContentType, img, p.Width, p.Height, p.UpdatedBy).Scan(&p.UpdatedAt)
	})
	if err != nil {
		return nil, err
	}
	s.publish(Update{Type: "map"})
	return p, nil
}

// PlanImage returns the plan's image, or ErrNotFound.
func (s *Service) PlanImage(ctx context.Context) (contentType string, img []byte, err error) {
	err = s.pool.QueryRow(ctx, `SELECT content_type, image FROM site_plan`).Scan(&contentType, &img)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, ErrNotFound
	}
	return contentType, img, err
}

// Map returns the plan (nil when none was uploaded) and the placed items.
func (s *Service) Map(ctx context.Context) (*Plan, []Item, error) {
	var p Plan
	err := s.pool.QueryRow(ctx, `SELECT content_type, width, height, updated_by, updated_at FROM site_plan`).
		Scan(&p.ContentType, &p.Width, &p.Height, &p.UpdatedBy, &p.UpdatedAt)
	plan := &p
	if errors.Is(err, pgx.ErrNoRows) {
		plan = nil
	} else if err != nil {
		return nil, nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT kind, id, x, y FROM map_items ORDER BY kind, id`)
	if err != nil {
		return nil, nil, err
	}
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Item])
	return plan, items, err
}

// Place puts a camera or a door on the plan.
func (s *Service) Place(ctx context.Context, who auth.Actor, it Item) error {
	if it.Kind != "camera" && it.Kind != "door" && it.Kind != "sensor" {
		return fmt.Errorf("%w: kind is camera, door or sensor", ErrInvalid)
	}
	if it.ID == "" || it.X < 0 || it.X > 1 || it.Y < 0 || it.Y > 1 {
		return fmt.Errorf("%w: an id and x, y as fractions of the plan (0 to 1)", ErrInvalid)
	}
	if err := s.change(ctx, who, "map.place", "", it, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO map_items (kind, id, x, y) VALUES ($1, $2, $3, $4)
			ON CONFLICT (kind, id) DO UPDATE SET x = $3, y = $4`, it.Kind, it.ID, it.X, it.Y)
		return err
	}); err != nil {
		return err
	}
	s.publish(Update{Type: "map"})
	return nil
}

// CameraAt is a camera's position on the plan, if placed.
func (s *Service) CameraAt(ctx context.Context, camera string) (*[2]float64, error) {
	return s.itemAt(ctx, "camera", camera)
}
