package vectors

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Source is where a rebuild reads embeddings from (events.Store).
type Source interface {
	FaceDays(ctx context.Context, from time.Time) (map[time.Time]int, error)
	ScanFacesBetween(ctx context.Context, from, to time.Time, fn func(id string, t time.Time, camera string, emb []float32) error) error
}

// Progress reports a rebuild: phase "load" or "build", rows done and rows in all.
type Progress func(phase string, done, total int)

// Load fills the index with every embedding since from: a sealed day whose snapshot holds as
// many rows as src has from its snapshot (LoadSnapshot), every other day from src (its arrays
// sized once from its count). Then it builds the IVF lists and seals what it can. It returns the
// rows loaded.
func (x *Index) Load(ctx context.Context, src Source, from time.Time, progress Progress) (int, error) {
	perDay, err := src.FaceDays(ctx, from)
	if err != nil {
		return 0, err
	}
	total := 0
	var days []time.Time
	for d, n := range perDay {
		total += n
		days = append(days, d)
	}
	slices.SortFunc(days, func(a, b time.Time) int { return a.Compare(b) })
	done := 0
	for _, d := range days {
		ok, err := x.LoadSnapshot(d, perDay[d])
		if err != nil {
			return done, err
		}
		if ok {
			done += perDay[d]
			if progress != nil {
				progress("snapshot", done, total)
			}
			continue
		}
		x.Reserve(d, perDay[d])
		lo := d
		if from.After(lo) {
			lo = from
		}
		err = src.ScanFacesBetween(ctx, lo, d.AddDate(0, 0, 1), func(id string, t time.Time, camera string, emb []float32) error {
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
	}
	if progress != nil {
		progress("load", done, total)
	}
	x.Build(func(d, t int) {
		if progress != nil {
			progress("build", d, t)
		}
	})
	_, err = x.Seal()
	return done, err
}
