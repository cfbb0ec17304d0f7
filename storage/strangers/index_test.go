package strangers

import (
	"math/rand/v2"
	"testing"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/faceeval"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// TestClusterPurityOnPhotos measures the clustering on the test photos (intel-0095) mixed into
// synthetic captures: every photo is seen 3 times (the descriptor with a little noise, as
// successive passages give), all in a shuffled order, and clustered incrementally as vigil does.
// Purity: of each stranger's faces, the share of its main person; completeness: of each person's
// faces, the share in their main stranger. Purity matters most (one stranger id must not mix
// two people); completeness is what a single photo per passage allows.
func TestClusterPurityOnPhotos(t *testing.T) {
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
	rng := rand.New(rand.NewPCG(20261130, 7))
	type capture struct {
		who string
		e   []float32
	}
	var caps []capture
	for _, s := range ss {
		for range 3 {
			e := make([]float32, len(s.Emb))
			for i := range e {
				e[i] = s.Emb[i] + float32(rng.NormFloat64())*0.02
			}
			space.Normalize(e)
			caps = append(caps, capture{s.Identity, e})
		}
	}
	rng.Shuffle(len(caps), func(i, j int) { caps[i], caps[j] = caps[j], caps[i] })
	for _, join := range []float32{DefaultJoin(sp) - 0.1, DefaultJoin(sp), DefaultJoin(sp) + 0.1, DefaultJoin(sp) + 0.2, DefaultJoin(sp) + 0.3} {
		ix := NewIndex(join)
		of := make([]string, len(caps))
		for i, c := range caps {
			id, _, _ := ix.Assign(c.e)
			if id == "" {
				id = string(rune('A'+ix.Len()%26)) + string(rune('0'+ix.Len()/26%10)) + string(rune('0'+ix.Len()/260))
				ix.Put(id, c.e, 1)
			}
			of[i] = id
		}
		purity, completeness := score(caps, of, func(c capture) string { return c.who })
		people := map[string]bool{}
		for _, c := range caps {
			people[c.who] = true
		}
		t.Logf("join %.2f: %d captures of %d people → %d strangers; purity %.3f, completeness %.3f", join, len(caps), len(people), ix.Len(), purity, completeness)
		if join == DefaultJoin(sp) && (purity < 0.95 || completeness < 0.5) {
			t.Errorf("at the default join distance: purity %.3f (want ≥ 0.95), completeness %.3f (want ≥ 0.5)", purity, completeness)
		}
	}
}

// score returns purity and completeness of an assignment.
func score[T any](items []T, cluster []string, label func(T) string) (purity, completeness float64) {
	byCluster := map[string]map[string]int{}
	byLabel := map[string]map[string]int{}
	for i, it := range items {
		l, c := label(it), cluster[i]
		if byCluster[c] == nil {
			byCluster[c] = map[string]int{}
		}
		if byLabel[l] == nil {
			byLabel[l] = map[string]int{}
		}
		byCluster[c][l]++
		byLabel[l][c]++
	}
	top := func(m map[string]map[string]int) float64 {
		sum := 0
		for _, counts := range m {
			best := 0
			for _, n := range counts {
				best = max(best, n)
			}
			sum += best
		}
		return float64(sum) / float64(len(items))
	}
	return top(byCluster), top(byLabel)
}
