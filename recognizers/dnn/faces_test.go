package dnn

import (
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers"
)

// fixtures locates the shared models and test photos, skipping when they are not here.
func fixtures(t testing.TB) (mdir, dir string, rows []testdata.Row) {
	t.Helper()
	dir, mdir = testenv.Testdata(t), testenv.Models(t)
	var err error
	if rows, err = testdata.Load(dir); err != nil {
		t.Fatal(err)
	}
	return mdir, dir, rows
}

func setup(t testing.TB) (*Faces, string, []testdata.Row) {
	t.Helper()
	mdir, dir, rows := fixtures(t)
	f, err := NewFaces(mdir, DetectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, dir, rows
}

func read(t testing.TB, path string) gocv.Mat {
	t.Helper()
	img := gocv.IMRead(path, gocv.IMReadColor)
	if img.Empty() {
		t.Fatalf("cannot read %s", path)
	}
	return img
}

func TestFaceCounts(t *testing.T) {
	f, dir, rows := setup(t)
	for _, r := range rows {
		if r.Kind != "group" && r.Kind != "nonface" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		faces, err := f.DetectFaces(img)
		img.Close()
		if err != nil {
			t.Errorf("%s: %v", r.File, err)
			continue
		}
		want := r.ExpectedFaces
		ok := len(faces) == want
		if strings.HasPrefix(r.Expected, "stress") {
			ok = len(faces) >= 4 // labels.csv: YuNet finds 4 of the 8 large, partial faces
		}
		if !ok {
			t.Errorf("%s: %d faces, want %d (%s)", r.File, len(faces), want, r.Expected)
		}
	}
}

func TestLivenessSamples(t *testing.T) {
	f, dir, rows := setup(t)
	n := 0
	for _, r := range rows {
		if r.Kind != "liveness" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		faces, _ := f.DetectFaces(img)
		i := Main(faces)
		if i < 0 {
			t.Fatalf("%s: no face", r.File)
		}
		p, err := f.Liveness.Liveness(img, faces[i])
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := "spoof"
		if p >= 0.5 {
			got = "real"
		}
		if got != r.Text() {
			t.Errorf("%s: p(real)=%.3f → %s, want %s", r.File, p, got, r.Text())
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d liveness samples", n)
	}
}

// TestVerificationTable embeds every single-face photo and reports same/different pairs at the
// threshold. The western identities must separate completely; the K-pop identities (young
// faces that dlib's model separates less well) are reported.
func TestVerificationTable(t *testing.T) {
	f, dir, rows := setup(t)
	type sample struct {
		id, file string
		kpop     bool
		e        recognizers.Embedding
	}
	var ss []sample
	for _, r := range rows {
		if r.Kind != "face" {
			continue
		}
		img := read(t, filepath.Join(dir, r.File))
		faces, err := f.DetectFaces(img)
		if err != nil || Main(faces) < 0 {
			t.Fatalf("%s: no face (%v)", r.File, err)
		}
		e, err := f.Embed(img, faces[Main(faces)])
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, sample{r.Identity, r.File, strings.Contains(rowSource(r), "go-face"), e})
	}
	type tally struct{ sameAcc, sameRej, diffAcc, diffRej int }
	count := func(th float32, westOnly bool) tally {
		var tl tally
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				if westOnly && (ss[i].kpop || ss[j].kpop) {
					continue
				}
				d := recognizers.Distance(&ss[i].e, &ss[j].e)
				same, acc := ss[i].id == ss[j].id, d < th
				switch {
				case same && acc:
					tl.sameAcc++
				case same:
					tl.sameRej++
				case acc:
					tl.diffAcc++
				default:
					tl.diffRej++
				}
			}
		}
		return tl
	}
	t.Logf("%d photos of %d identities; pairs by distance threshold:", len(ss), 25)
	t.Logf("%-9s | %-34s | %-34s", "threshold", "western: same acc/rej, diff acc/rej", "all incl. K-pop: same acc/rej, diff acc/rej")
	for _, th := range []float32{0.40, 0.45, MatchThreshold, 0.55, 0.60} {
		w, a := count(th, true), count(th, false)
		t.Logf("%-9.3f | %5d/%-4d %5d/%-17d | %5d/%-4d %5d/%-5d", th, w.sameAcc, w.sameRej, w.diffAcc, w.diffRej, a.sameAcc, a.sameRej, a.diffAcc, a.diffRej)
	}
	if w := count(0.6, true); w.sameRej != 0 || w.diffAcc != 0 {
		t.Errorf("western identities do not separate at dlib's 0.6: %+v", w)
	}
	if w := count(MatchThreshold, true); w.diffAcc != 0 {
		t.Errorf("western false accepts at %.2f: %+v", MatchThreshold, w)
	}
	a := count(MatchThreshold, false)
	if far := float64(a.diffAcc) / float64(a.diffAcc+a.diffRej); far > 0.02 {
		t.Errorf("false accept rate %.3f at %.2f over all identities: %+v", far, MatchThreshold, a)
	}
	if frr := float64(a.sameRej) / float64(a.sameAcc+a.sameRej); frr > 0.2 {
		t.Errorf("false reject rate %.3f at %.2f over all identities: %+v", frr, MatchThreshold, a)
	}
}

// rowSource is not in testdata.Row; K-pop photos are the go-face identities, named by suffix.
func rowSource(r testdata.Row) string {
	for _, k := range []string{"_twice", "_aoa", "_dia", "_clc", "_gugudan", "_wjsn", "_pristin", "_redvelvet"} {
		if strings.HasSuffix(r.Identity, k) {
			return "go-face"
		}
	}
	return ""
}
