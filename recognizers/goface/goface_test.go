//go:build goface

package goface

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// TestSameIdentityDecisionsAsDNN embeds every single-face photo with both backends and checks
// they live in one space: the same photo lands close in both, and pairwise same/different
// decisions at the match threshold agree.
func TestSameIdentityDecisionsAsDNN(t *testing.T) {
	td, mdir := testenv.Testdata(t), testenv.Models(t)
	rows, _ := testdata.Load(td)
	gf, err := New(mdir)
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	df, err := dnn.NewFacesIn(mdir, space.DlibV1, dnn.DetectorOptions{}) // go-face describes faces in dlib's space
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	type pair struct {
		id   string
		g, d recognizers.Embedding
	}
	var ps []pair
	var cross []float32
	missed := 0
	for _, r := range rows {
		if r.Kind != "face" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(td, r.File))
		if err != nil {
			t.Fatal(err)
		}
		gres, err := gf.Analyze(data)
		if err != nil {
			t.Fatalf("%s: %v", r.File, err)
		}
		if len(gres) == 0 {
			missed++ // dlib's HOG detector misses some faces YuNet finds
			continue
		}
		img, _ := recognizers.LoadImage(filepath.Join(td, r.File))
		faces, _ := df.DetectFaces(img)
		i := dnn.Main(faces)
		de, err := df.Embed(img, faces[i])
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The largest dlib face.
		best := 0
		for k := range gres {
			if gres[k].Box.W*gres[k].Box.H > gres[best].Box.W*gres[best].Box.H {
				best = k
			}
		}
		ps = append(ps, pair{r.Identity, gres[best].Embedding, de})
		cross = append(cross, recognizers.Distance(gres[best].Embedding, de))
	}
	var sum, worst float32
	for _, c := range cross {
		sum += c
		worst = max(worst, c)
	}
	agree, total := 0, 0
	var disagree []string
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			g := recognizers.Distance(ps[i].g, ps[j].g) < space.DlibV1.Possible
			d := recognizers.Distance(ps[i].d, ps[j].d) < space.DlibV1.Possible
			total++
			if g == d {
				agree++
			} else if len(disagree) < 8 {
				disagree = append(disagree, ps[i].id+"~"+ps[j].id)
			}
		}
	}
	t.Logf("%d photos embedded by both (%d missed by dlib's HOG detector); same photo across backends: mean distance %.3f, max %.3f",
		len(ps), missed, sum/float32(len(cross)), worst)
	t.Logf("pairwise decisions at %.2f: %d of %d agree (%.1f%%); first disagreements %v", space.DlibV1.Possible, agree, total, 100*float64(agree)/float64(total), disagree)
	if len(ps) < 40 || sum/float32(len(cross)) > 0.3 || float64(agree)/float64(total) < 0.95 {
		t.Fatal("the backends do not share an embedding space closely enough")
	}
}
