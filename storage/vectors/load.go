package vectors

import (
	"context"
	"errors"
	"time"
)

// Source is where a rebuild reads embeddings from (events.Store).
type Source interface {
	FaceDays(ctx context.Context, from time.Time) (map[time.Time]int, error)
	ScanFaces(ctx context.Context, from time.Time, fn func(id string, t time.Time, camera string, emb []float32) error) error
}

// Progress reports a rebuild: phase "load" or "build", rows done and rows in all.
type Progress func(phase string, done, total int)

// Load fills the index from src with every embedding since from (each day's arrays sized once
// from its count), then builds the IVF lists. It returns the rows loaded.
func (x *Index) Load(ctx context.Context, src Source, from time.Time, progress Progress) (int, error) {
	perDay, err := src.FaceDays(ctx, from)
	if err != nil {
		return 0, err
	}
	total := 0
	for d, n := range perDay {
		x.Reserve(d, n)
		total += n
	}
	done := 0
	err = src.ScanFaces(ctx, from, func(id string, t time.Time, camera string, emb []float32) error {
		if _, err := x.Add(id, t, camera, emb); err != nil && !errors.Is(err, ErrID) {
			return err
		}
		done++
		if progress != nil && done%10000 == 0 {
			progress("load", done, total)
		}
		return nil
	})
	if err != nil {
		return done, err
	}
	if progress != nil {
		progress("load", done, total)
	}
	x.Build(func(d, t int) {
		if progress != nil {
			progress("build", d, t)
		}
	})
	return done, nil
}
