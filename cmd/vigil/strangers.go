package main

import (
	"context"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/lifecycle"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/storage/strangers"
)

// strangerService is the node's one strangers service (the clusterer and the API's reads).
func (n *node) strangerService() *strangers.Service {
	n.strangersOnce.Do(func() {
		c := n.cfg.Strangers
		n.strangers = strangers.New(n.st.pool, n.cfg.Pipeline.FaceSpace(), strangers.Rules{NightFrom: c.NightFrom, NightTo: c.NightTo,
			NightDays: c.NightDays, DoorTries: c.DoorTries, IsDoor: func(camera string) bool {
				return n.engine != nil && len(n.engine.DoorsWithCamera(camera)) > 0
			}})
	})
	return n.strangers
}

// strangersComponent clusters the faces that matched no one into strangers every
// strangers.every (nodes with the search role; one at a time does) and raises the stranger
// rules as alarm events where the stranger was last seen.
func (n *node) strangersComponent() lifecycle.Component {
	var bg background
	return lifecycle.Component{Name: "strangers", Start: func(context.Context) error {
		svc := n.strangerService()
		bg.every(n.cfg.Strangers.Every.D(), func(ctx context.Context) {
			_, alarms, err := svc.Pass(ctx)
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("strangers not clustered", "err", err)
				}
				return
			}
			for _, a := range alarms {
				n.publishAlarm(&event.Event{ID: event.NewID(a.Time), Camera: a.Camera, Kind: event.KindAlarm, Time: a.Time, First: a.Time,
					Alarm: &event.Alarm{Type: a.Type, Stranger: a.Stranger}})
				n.log.Warn("stranger rule", "type", a.Type, "stranger", a.Stranger, "camera", a.Camera, "nights", a.Days, "tries", a.Tries)
			}
		})
		return nil
	}, Stop: bg.stop}
}

// followEntries adds the watch-list entries made at run time (promoted strangers) since seq to
// this node's gallery, and returns the newest seq taken.
func (n *node) followEntries(ctx context.Context, seq int64) int64 {
	es, err := strangers.Entries(ctx, n.st.pool, seq)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("watch-list entries not read", "err", err)
		}
		return seq
	}
	for _, e := range es {
		seq = e.Seq
		if e.Model != n.gallery.Space().Name {
			continue
		}
		p := pipeline.Person{ID: e.ID, Name: e.Name, List: e.List}
		for _, v := range e.Embeddings {
			p.Embeddings = append(p.Embeddings, recognizers.Embedding(v))
		}
		n.gallery.Add(p)
		n.log.Info("watch-list entry added", "person", e.ID, "list", e.List, "templates", len(e.Embeddings))
	}
	return seq
}
