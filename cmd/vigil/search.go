package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/api"
	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/plates"
	"github.com/vigil-oss/vigil/storage/vectors"
)

// searchIndexes are the in-memory indexes behind /v1/search: every face embedding kept in the
// event store and every distinct plate. They are filled from the bus at once (so nothing stored
// while they load is missed; adds are idempotent) and rebuilt from PostgreSQL in the background.
type searchIndexes struct {
	faces  *vectors.Index
	plates *plates.Index
}

// startSearch subscribes to the bus, then loads the store's last `days` days. The returned stop
// ends the subscription and the periodic index builds.
func startSearch(ctx context.Context, st *events.Store, b *bus.Bus, days int, log *slog.Logger) (*searchIndexes, func(), error) {
	log = log.With("component", "search")
	si := &searchIndexes{faces: vectors.New(vectors.Options{}), plates: plates.New()}
	unsub, err := b.Subscribe(event.SubjectPrefix+".>", func(_ string, data []byte) {
		r, err := event.Unpack(data)
		if err != nil {
			return
		}
		if len(r.Embedding) == 4*events.Dims {
			if _, err := si.faces.Add(r.ID, r.Time, r.Camera, r.Vector()); err != nil {
				log.Debug("face not indexed", "event", r.ID, "err", err)
			}
		}
		if r.Plate != nil && r.Plate.Text != "" {
			si.plates.Add(r.Plate.Text, 1, r.Time)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		since := time.Now().AddDate(0, 0, -days)
		if err := si.load(ctx, st, since, log); err != nil && ctx.Err() == nil {
			log.Error("search indexes: loading from the event store failed; searches see only new events", "err", err)
		}
		// Partitions grow through the day: rebuild their IVF lists as they do.
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				si.faces.Build(nil)
			}
		}
	})
	return si, func() { unsub(); cancel(); wg.Wait() }, nil
}

// load fills the indexes from PostgreSQL, logging progress.
func (si *searchIndexes) load(ctx context.Context, st *events.Store, since time.Time, log *slog.Logger) error {
	t0 := time.Now()
	if err := st.PlateCounts(ctx, since, func(p string, n int, last time.Time) { si.plates.Add(p, n, last) }); err != nil {
		return fmt.Errorf("plates: %w", err)
	}
	log.Info("search indexes: loading faces", "plates", si.plates.Len())
	lastLog := time.Now()
	n, err := si.faces.Load(ctx, st, since, func(phase string, done, total int) {
		if time.Since(lastLog) > 5*time.Second {
			log.Info("search indexes: "+phase, "done", done, "of", total, "percent", 100*done/max(total, 1))
			lastLog = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("faces: %w", err)
	}
	log.Info("search indexes ready", "faces", n, "plates", si.plates.Len(), "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// faceEmbedder finds and embeds faces in uploaded photos for face search. The models load on
// first use; one photo is analysed at a time.
type faceEmbedder struct {
	dir string

	mu    sync.Mutex
	faces *dnn.Faces
}

func (f *faceEmbedder) Faces(ctx context.Context, img []byte) ([]api.QueryFace, error) {
	var out []api.QueryFace
	err := f.withFaces(img, func(faces *dnn.Faces, m gocv.Mat) error {
		found, err := faces.DetectFaces(m)
		if err != nil {
			return err
		}
		// Largest first: the face a photo is about.
		slices.SortFunc(found, func(a, b recognizers.Face) int {
			return cmp.Compare(b.Box.W*b.Box.H, a.Box.W*a.Box.H)
		})
		for _, fc := range found {
			if fc.Score < 0.6 {
				continue
			}
			emb, err := faces.Embed(m, fc)
			if err != nil {
				return err
			}
			out = append(out, api.QueryFace{Box: [4]int{int(fc.Box.X), int(fc.Box.Y), int(fc.Box.W), int(fc.Box.H)}, Score: fc.Score, Embedding: emb[:]})
		}
		return nil
	})
	return out, err
}

func (f *faceEmbedder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faces != nil {
		f.faces.Close()
	}
}

// withFaces runs fn with the models loaded (once) and the image decoded, one photo at a time.
func (f *faceEmbedder) withFaces(img []byte, fn func(faces *dnn.Faces, m gocv.Mat) error) error {
	m, err := recognizers.DecodeImage(img)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrNotImage, err)
	}
	defer m.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faces == nil {
		if f.faces, err = dnn.NewFaces(f.dir, dnn.DetectorOptions{}); err != nil {
			f.faces = nil
			return err
		}
	}
	return fn(f.faces, m)
}

// Probe finds the main face of a door photo: its embedding and liveness.
func (f *faceEmbedder) Probe(ctx context.Context, img []byte) (access.FaceProbe, error) {
	var p access.FaceProbe
	err := f.withFaces(img, func(faces *dnn.Faces, m gocv.Mat) error {
		found, err := faces.DetectFaces(m)
		if err != nil {
			return err
		}
		i := dnn.Main(found)
		if i < 0 {
			return nil
		}
		emb, err := faces.Embed(m, found[i])
		if err != nil {
			return err
		}
		if p.Liveness, err = faces.Liveness.Liveness(m, found[i]); err != nil {
			return err
		}
		p.Found, p.Embedding = true, emb[:]
		return nil
	})
	return p, err
}

// Enrol applies the enrolment gate (exactly one face, at least 60 px, yaw ≤ 40°, live) to a photo.
func (f *faceEmbedder) Enrol(ctx context.Context, img []byte) (access.FaceTemplate, error) {
	var t access.FaceTemplate
	err := f.withFaces(img, func(faces *dnn.Faces, m gocv.Mat) error {
		emb, q, err := pipeline.EnrolFace(faces, m, pipeline.EnrolGate{MinLive: access.LivenessMinimum})
		if err != nil {
			return fmt.Errorf("%w: %v", api.ErrEnrolGate, err)
		}
		found, _ := faces.DetectFaces(m)
		if i := dnn.Main(found); i >= 0 {
			t.Liveness, _ = faces.Liveness.Liveness(m, found[i])
		}
		t.Embedding, t.Quality = emb[:], q.Score
		return nil
	})
	return t, err
}

// eraser removes a person's face events everywhere they are kept.
type eraser struct {
	st    *storage
	faces *vectors.Index
}

func (e eraser) ErasePerson(ctx context.Context, person string) (int, error) {
	ids, snaps, err := e.st.events.ErasePerson(ctx, person)
	if err != nil {
		return 0, err
	}
	e.faces.RemoveIDs(ids)
	for _, k := range snaps {
		if err := e.st.blobs.Delete(ctx, k); err != nil {
			return len(ids), fmt.Errorf("snapshot %s: %w", k, err)
		}
	}
	return len(ids), nil
}
