package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers"
)

// autoUnlock connects recognition to the doors: the pipeline's gallery follows the enrolled
// residents' face templates (list "access"), and a face event naming one of them at a door's camera asks the
// decision engine, which queues an unlock for that door's controller when the rules allow. One
// unlock per person and door within 10 s (a passage publishes early, then its final event).
// Door cameras' frames go first in the pipeline's recognizer queues.
func autoUnlock(ctx context.Context, e *access.Engine, pl *pipeline.Pipeline, doorPriority bool, g *pipeline.Gallery, b *bus.Bus, log *slog.Logger) (func(), error) {
	log = log.With("component", "auto-unlock")
	if pl != nil && doorPriority {
		pl.SetPriority(func(camera string) bool { return len(e.DoorsWithCamera(camera)) > 0 })
	}
	if g != nil {
		sync := func() {
			persons, embs := e.FaceTemplates()
			at := map[string]int{}
			var people []pipeline.Person
			for i, p := range persons {
				j, ok := at[p]
				if !ok {
					j = len(people)
					at[p] = j
					people = append(people, pipeline.Person{ID: p, Name: p})
				}
				var emb recognizers.Embedding
				copy(emb[:], embs[i])
				people[j].Embeddings = append(people[j].Embeddings, emb)
			}
			g.SetList("access", people) // its own list: the JSON gallery's residents and watchlists stay
		}
		sync()
		e.OnReload(sync)
	}
	var mu sync.Mutex
	recent := map[[2]string]time.Time{}
	return b.Subscribe(event.SubjectPrefix+".face.>", func(_ string, data []byte) {
		r, err := event.Unpack(data)
		if err != nil || r.Match == nil || r.Match.PersonID == "" {
			return
		}
		for _, door := range e.DoorsWithCamera(r.Camera) {
			k := [2]string{door, r.Match.PersonID}
			mu.Lock()
			if time.Since(recent[k]) < 10*time.Second {
				mu.Unlock()
				continue
			}
			recent[k] = time.Now()
			if len(recent) > 10000 {
				clear(recent)
			}
			mu.Unlock()
			d, err := e.AutoUnlock(ctx, door, r.Match.PersonID, r.Liveness, r.ID, r.Arrival)
			if err != nil {
				log.Error("auto-unlock failed", "door", door, "err", err)
				continue
			}
			log.Info("door decision from its camera", "door", door, "person", r.Match.PersonID, "grant", d.Grant, "reason", d.Reason)
		}
	})
}
