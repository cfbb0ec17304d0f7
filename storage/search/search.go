// Package search keeps the in-memory indexes behind investigators' searches: every face
// embedding kept in the event store (storage/vectors) and every distinct plate (storage/plates).
// They follow the bus, so a search sees an event as soon as it is published, and are rebuilt
// from PostgreSQL in the background at start. It also erases a person's face events from the
// store, the index and the blob store together.
package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/plates"
	"github.com/vigil-oss/vigil/storage/vectors"
)

// Subscriber delivers bus messages (bus.Bus).
type Subscriber interface {
	Subscribe(subject string, fn func(subject string, data []byte)) (stop func(), err error)
}

// Indexes are the face and plate indexes.
type Indexes struct {
	Faces  *vectors.Index
	Plates *plates.Index
	space  space.Space // of the face index

	store  *events.Store
	days   int
	log    *slog.Logger
	unsub  func()
	cancel context.CancelFunc
	wg     sync.WaitGroup
	loaded chan struct{}
}

// New returns empty indexes that will load the store's last days days. dir, when set, is where
// the face index keeps its sealed days (their vectors and snapshots: vectors.Options.Dir), one
// folder per face model.
func New(store *events.Store, sp space.Space, days int, dir string, log *slog.Logger) *Indexes {
	opts := vectors.Options{Dim: sp.Dims}
	if dir != "" {
		opts.Dir = filepath.Join(dir, sp.Name)
	}
	return &Indexes{Faces: vectors.New(opts), Plates: plates.New(), store: store, days: days, space: sp,
		log: log.With("component", "search"), loaded: make(chan struct{})}
}

// Start subscribes to the bus first (so nothing stored while the indexes load is missed: adds
// are idempotent), then loads the store in the background and rebuilds the face index's lists
// every 10 minutes as the day's partition grows. Stop ends both.
func (ix *Indexes) Start(sub Subscriber) error {
	unsub, err := sub.Subscribe(event.SubjectPrefix+".>", func(_ string, data []byte) {
		e, err := event.Unpack(data)
		if err != nil {
			return
		}
		ix.add(e)
	})
	if err != nil {
		return err
	}
	// Erasures made on any node of the site leave every node's index.
	unErased, err := sub.Subscribe(ErasedSubject, func(_ string, data []byte) {
		var ids []string
		if json.Unmarshal(data, &ids) == nil {
			if _, err := ix.Faces.RemoveIDs(ids); err != nil {
				ix.log.Error("erased faces left in a sealed day of the index", "err", err)
			}
		}
	})
	if err != nil {
		unsub()
		return err
	}
	ix.unsub = func() {
		unsub()
		unErased()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ix.cancel = cancel
	ix.wg.Go(func() {
		defer close(ix.loaded)
		since := time.Now().AddDate(0, 0, -ix.days)
		if err := ix.load(ctx, since); err != nil && ctx.Err() == nil {
			ix.log.Error("search indexes: loading from the event store failed; searches see only new events", "err", err)
		}
	})
	ix.wg.Go(func() {
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				ix.Faces.Build(nil)
				if _, err := ix.Faces.Seal(); err != nil {
					ix.log.Warn("face index: a day not sealed; it stays in memory", "err", err)
				}
			}
		}
	})
	return nil
}

// Loaded is closed once the load from the store has ended.
func (ix *Indexes) Loaded() <-chan struct{} { return ix.loaded }

// Stop ends the subscription and the background work.
func (ix *Indexes) Stop() {
	if ix.unsub != nil {
		ix.unsub()
	}
	if ix.cancel != nil {
		ix.cancel()
	}
	ix.wg.Wait()
}

func (ix *Indexes) add(e *event.Event) {
	if len(e.Embedding) == 4*ix.space.Dims && e.Model == ix.space.Name {
		if _, err := ix.Faces.Add(e.ID, e.Time, e.Camera, e.Vector()); err != nil {
			ix.log.Debug("face not indexed", "event", e.ID, "err", err)
		}
	}
	if e.Plate != nil && e.Plate.Text != "" {
		ix.Plates.Add(e.Plate.Text, 1, e.Time)
	}
}

// load fills the indexes from PostgreSQL, logging progress.
func (ix *Indexes) load(ctx context.Context, since time.Time) error {
	t0 := time.Now()
	if err := ix.store.PlateCounts(ctx, since, func(p string, n int, last time.Time) { ix.Plates.Add(p, n, last) }); err != nil {
		return fmt.Errorf("plates: %w", err)
	}
	ix.log.Info("search indexes: loading faces", "plates", ix.Plates.Len())
	lastLog := time.Now()
	n, err := ix.Faces.Load(ctx, ix.store, since, func(phase string, done, total int) {
		if time.Since(lastLog) > 5*time.Second {
			ix.log.Info("search indexes: "+phase, "done", done, "of", total, "percent", 100*done/max(total, 1))
			lastLog = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("faces: %w", err)
	}
	ix.log.Info("search indexes ready", "faces", n, "plates", ix.Plates.Len(), "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// Purger deletes matching messages from the bus's events stream (bus.Bus).
type Purger interface {
	DeleteMatching(ctx context.Context, subject string, match func(data []byte) bool) (int, error)
}

// Eraser removes a person's face events everywhere they are kept: the bus (where a consumer could
// still store or index them), the event store, the face index and their snapshots in the blob
// store. Case files already exported are not touched: the erasure names them.
type Eraser struct {
	Store *events.Store
	Faces *vectors.Index // this node's index; nil on a node without the search role
	Blobs blob.Store
	Bus   Purger // nil: no bus to purge
	// Peers, when set, tells every node's index of the erased events (bus.Bus.Broadcast).
	Peers func(subject string, data []byte) error
}

// ErasedSubject carries the ids of erased face events to every node's index (a JSON list).
const ErasedSubject = "vigil.search.erased"

// Erasure is what an erasure removed, and the exports that still hold the person.
type Erasure struct {
	Events      int             `json:"face_events_erased"`
	BusMessages int             `json:"bus_messages_erased"`
	Snapshots   int             `json:"snapshots_erased"`
	Exports     []events.Export `json:"exports_still_holding"`
}

// ErasePerson erases; the bus first, so that nothing in flight comes back to the store or the
// index behind it.
func (e Eraser) ErasePerson(ctx context.Context, person string) (Erasure, error) {
	var out Erasure
	if e.Bus != nil {
		n, err := e.Bus.DeleteMatching(ctx, event.SubjectPrefix+"."+event.KindFace+".>", func(data []byte) bool {
			ev, err := event.Unpack(data)
			return err == nil && ev.Match != nil && ev.Match.PersonID == person
		})
		out.BusMessages = n
		if err != nil {
			return out, fmt.Errorf("erasing from the bus: %w", err)
		}
	}
	ids, snaps, err := e.Store.ErasePerson(ctx, person)
	if err != nil {
		return out, err
	}
	out.Events = len(ids)
	if e.Faces != nil {
		if _, err := e.Faces.RemoveIDs(ids); err != nil {
			return out, err
		}
	}
	if e.Peers != nil && len(ids) > 0 {
		b, _ := json.Marshal(ids)
		if err := e.Peers(ErasedSubject, b); err != nil {
			return out, fmt.Errorf("telling the other nodes' indexes: %w", err)
		}
	}
	for _, k := range snaps {
		if err := e.Blobs.Delete(ctx, k); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return out, fmt.Errorf("snapshot %s: %w", k, err)
		}
		out.Snapshots++
	}
	if out.Exports, err = e.Store.ExportsWith(ctx, person); err != nil {
		return out, err
	}
	if out.Exports == nil {
		out.Exports = []events.Export{}
	}
	return out, nil
}
