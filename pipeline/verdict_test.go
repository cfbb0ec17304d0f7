package pipeline

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/faceeval"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// TestGalleryVerdicts: a wrong verdict stops a look-alike's face from matching the person again
// while the person's own faces still match; a template from a correct verdict is added to a
// watch-list entry and never to a resident.
func TestGalleryVerdicts(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	a, r := randEmb(rng), randEmb(rng)
	g := NewGallery(MatchOptions{Space: space.DlibV1})
	g.Add(Person{ID: "suspect", List: "watchlist", Embeddings: []recognizers.Embedding{a}})
	g.Add(Person{ID: "resident", List: "residents", Embeddings: []recognizers.Embedding{r}})
	lookalike := near(rng, a, 0.4)
	if m := g.MatchFace(lookalike); m == nil || m.PersonID != "suspect" {
		t.Fatalf("the look-alike should match before the verdict: %+v", m)
	}
	if got := g.ApplyVerdict("suspect", "wrong", "", false, lookalike); !slices.Equal(got, []string{VerdictNegative}) {
		t.Fatalf("effects %v", got)
	}
	if m := g.MatchFace(near(rng, lookalike, 0.1)); m != nil {
		t.Fatalf("the corrected look-alike matched again: %+v", m)
	}
	if m := g.MatchFace(near(rng, a, 0.25)); m == nil || m.PersonID != "suspect" {
		t.Fatalf("the suspect's own face no longer matches: %+v", m)
	}
	// Templates: a watch-list entry takes one, a resident never.
	later := near(rng, a, 0.3)
	if got := g.ApplyVerdict("suspect", "correct", "", true, later); !slices.Contains(got, VerdictTemplate) {
		t.Fatalf("watch-list template: %v", got)
	}
	if got := g.ApplyVerdict("resident", "correct", "", true, near(rng, r, 0.2)); !slices.Equal(got, []string{VerdictNone}) {
		t.Fatalf("a resident's template was changed: %v", got)
	}
	for _, p := range g.People() {
		if want := map[string]int{"suspect": 2, "resident": 1}[p.ID]; len(p.Embeddings) != want {
			t.Fatalf("%s has %d templates, want %d", p.ID, len(p.Embeddings), want)
		}
	}
	if got := g.ApplyVerdict("suspect", "wrong", "", false, make(recognizers.Embedding, 7)); !slices.Equal(got, []string{VerdictNone}) {
		t.Fatalf("a face of another space was taken: %v", got)
	}
}

// TestVerdictsOnLookalikes measures verdicts on the test photos (the model vigil runs, intel-0095):
// the first photo of each person is enrolled on a watch list; the others are probes. At a loose
// threshold (the Possible distance plus 0.15, where look-alikes start to match, as a weaker
// camera or a large gallery would) some probes match the wrong person. An operator marks the
// first five of those wrong; the same confusions must then stop (the same person's other photos
// no longer match the person they were taken for) and no probe that matched its own person may
// be lost.
func TestVerdictsOnLookalikes(t *testing.T) {
	mdir, dir := testenv.Models(t), testenv.Testdata(t)
	photos, err := faceeval.Photos(dir)
	if err != nil {
		t.Fatal(err)
	}
	sp := space.DefaultSpace
	f, err := dnn.NewFacesIn(mdir, sp, dnn.DetectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ss, _, err := faceeval.Embed(f, dir, photos)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var g *Gallery
	var probes []faceeval.Sample
	enrolled := map[string]bool{}
	build := func(threshold float32) {
		g = NewGallery(MatchOptions{Space: sp, Threshold: threshold, Margin: 0.005})
		probes, enrolled = nil, map[string]bool{}
		seen := map[string]bool{}
		for _, s := range ss {
			if !seen[s.Identity] {
				seen[s.Identity] = true
				if len(seen)%2 == 0 {
					probes = append(probes, s) // a stranger
					continue
				}
				enrolled[s.Identity] = true
				g.Add(Person{ID: s.Identity, List: "watchlist", Embeddings: []recognizers.Embedding{s.Emb}})
				continue
			}
			probes = append(probes, s)
		}
	}
	type pair struct{ who, as string }
	count := func() (right int, wrong []pair, wrongIdx []int) {
		for i, p := range probes {
			m := g.MatchFace(p.Emb)
			switch {
			case m == nil:
			case m.PersonID == p.Identity:
				right++
			default:
				wrong = append(wrong, pair{p.Identity, m.PersonID})
				wrongIdx = append(wrongIdx, i)
			}
		}
		return
	}
	var right0 int
	var wrong0 []pair
	var idx0 []int
	for th := sp.Possible; th < 2; th += 0.05 {
		build(th)
		if right0, wrong0, idx0 = count(); len(wrong0) >= 3 {
			break
		}
	}
	if len(wrong0) == 0 {
		t.Fatalf("no look-alike matched at the loose threshold: nothing to correct (%d probes, %d right)", len(probes), right0)
	}
	corrected := map[pair]bool{}
	verdicts := 0
	for k := 0; k < len(idx0) && k < 5; k++ {
		verdicts++
		p := probes[idx0[k]]
		g.ApplyVerdict(wrong0[k].as, "wrong", "", false, p.Emb)
		corrected[wrong0[k]] = true
	}
	right1, wrong1, _ := count()
	stillCorrected := 0
	for _, w := range wrong1 {
		if corrected[w] {
			stillCorrected++
		}
	}
	t.Logf("%d probes (%d people enrolled, the rest strangers) at threshold %.2f: before verdicts %d right, %d wrong; after %d wrong verdicts (%d confusions): %d right, %d wrong (%d of the corrected confusions left)",
		len(probes), len(enrolled), g.opts.Threshold, right0, len(wrong0), verdicts, len(corrected), right1, len(wrong1), stillCorrected)
	if stillCorrected > 0 {
		t.Errorf("%d matches of a corrected confusion remain", stillCorrected)
	}
	if right1 < right0 {
		t.Errorf("verdicts cost %d right matches", right0-right1)
	}
	if len(wrong1) >= len(wrong0) {
		t.Errorf("wrong matches %d → %d", len(wrong0), len(wrong1))
	}
}
