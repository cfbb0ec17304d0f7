package dnn

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/storage/vectors"
)

// TestFaceSearchRecallWithRealPhotos mixes the embeddings of every test photo into a synthetic
// gallery of 60,000 face captures over three days (IVF lists built) and searches with each photo:
// the approximate index must find what the exact scan finds (recall@10 against exact ≥ 0.98), and
// find the identity's other photos as often as the exact scan does.
func TestFaceSearchRecallWithRealPhotos(t *testing.T) {
	f, dir, rows := setup(t)
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 3))
	type photo struct {
		id, who string
		emb     []float32
		at      time.Time
	}
	var photos []photo
	var like [][]float32
	for i, r := range rows {
		if r.Kind != "face" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		faces, err := f.DetectFaces(img)
		if err != nil || Main(faces) < 0 {
			img.Close()
			continue
		}
		e, err := f.Embed(img, faces[Main(faces)])
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		at := start.Add(time.Duration(rng.IntN(72*3600)) * time.Second)
		photos = append(photos, photo{id: fmt.Sprintf("%012x%010x", at.UnixMilli(), 1_000_000+i), who: r.Identity, emb: e, at: at})
		like = append(like, e)
	}
	// Distractors shaped like real faces of the model: 60,000 captures of 30,000 made-up people.
	x := vectors.New(vectors.Options{IVFMin: 10000, Dim: len(like[0])})
	synth := vectors.NewSynthLike(3, 30000, like)
	v := make([]float32, len(like[0]))
	const gallery = 60000
	for i := range gallery {
		at := start.Add(time.Duration(i) * 72 * time.Hour / gallery)
		synth.Capture(rng.IntN(synth.Identities()), rng, v)
		if _, err := x.Add(fmt.Sprintf("%012x%010x", at.UnixMilli(), i), at, "cam", v); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range photos {
		if _, err := x.Add(p.id, p.at, "cam-photos", p.emb); err != nil {
			t.Fatal(err)
		}
	}
	x.Build(nil)
	who := map[string]string{}
	for _, p := range photos {
		who[p.id] = p.who
	}
	var againstExact, trueExact, trueApprox float64
	queries := 0
	for _, p := range photos {
		others := 0
		for _, q := range photos {
			if q.who == p.who && q.id != p.id {
				others++
			}
		}
		if others == 0 {
			continue
		}
		queries++
		search := func(m vectors.Mode) []vectors.Hit {
			hits, err := x.Search(vectors.Query{Vector: p.emb, From: start, To: start.Add(72 * time.Hour), K: 11, Mode: m})
			if err != nil {
				t.Fatal(err)
			}
			return hits
		}
		exact, approx := search(vectors.Exact), search(vectors.Approximate)
		trueIn := func(hits []vectors.Hit) float64 {
			n := 0
			for _, h := range hits {
				if h.ID != p.id && who[h.ID] == p.who {
					n++
				}
			}
			return float64(n) / float64(min(others, 10))
		}
		trueExact += trueIn(exact)
		trueApprox += trueIn(approx)
		// Against exact: of the exact hits an investigator is shown (inside the model's
		// "possible" band; beyond it the ranking is among strangers at nearly equal distances),
		// how many the approximate search finds too.
		inApprox := map[string]bool{}
		for _, h := range approx {
			inApprox[h.ID] = true
		}
		shown, n := 0, 0
		for _, h := range exact {
			if h.Distance < space.DefaultSpace.Possible {
				shown++
				if inApprox[h.ID] {
					n++
				}
			}
		}
		if shown > 0 {
			againstExact += float64(n) / float64(shown)
		} else {
			againstExact++
		}
	}
	q := float64(queries)
	t.Logf("%d photo queries over %d vectors: recall@10 of the identity's other photos exact %.3f, approximate %.3f; approximate against exact %.3f",
		queries, x.Len(), trueExact/q, trueApprox/q, againstExact/q)
	if queries < 20 {
		t.Fatalf("only %d photos with a second photo of the same person", queries)
	}
	// The approximate index may miss a little of what the exact scan finds (it probes a sixth of
	// each partition's lists): at most 0.02 of a person's other photos.
	if againstExact/q < 0.98 || trueApprox/q < trueExact/q-0.02 {
		t.Fatalf("approximate recall: %.3f against exact, identity recall %.3f vs exact %.3f", againstExact/q, trueApprox/q, trueExact/q)
	}
}
