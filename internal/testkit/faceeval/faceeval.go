// Package faceeval measures face embedders on the shared test photos the way the access-control
// field does (NIST FRVT 1:N terms): mate and non-mate distance distributions, split into
// East-Asian faces and the rest, the pairwise false-match rate at a distance, and from those the
// open-set FNIR at a target FPIR for a gallery of N people. recognizers/dnn's tests and
// bench/faces use it.
package faceeval

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// Sample is one photo's main face, described.
type Sample struct {
	Identity, File string
	EastAsian      bool
	Emb            recognizers.Embedding
}

// Photo is one labelled face photo of the test set.
type Photo struct {
	Identity, File string // File relative to the testdata folder
	EastAsian      bool
}

// kpopSuffixes mark the go-face identities (K-pop idols) among testdata/faces.
var kpopSuffixes = []string{"_twice", "_aoa", "_dia", "_clc", "_gugudan", "_wjsn", "_pristin", "_redvelvet"}

// Photos lists the face photos: testdata/faces (the K-pop idols East Asian) and
// testdata/faces_ea (all East Asian).
func Photos(dir string) ([]Photo, error) {
	rows, err := testdata.Load(dir)
	if err != nil {
		return nil, err
	}
	var out []Photo
	for _, r := range rows {
		if r.Kind != "face" {
			continue
		}
		ea := slices.ContainsFunc(kpopSuffixes, func(s string) bool { return strings.HasSuffix(r.Identity, s) })
		out = append(out, Photo{Identity: r.Identity, File: r.File, EastAsian: ea})
	}
	f, err := os.Open(filepath.Join(dir, "faces_ea", "labels.csv"))
	if err != nil {
		return nil, fmt.Errorf("faceeval: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("faceeval: faces_ea/labels.csv: %w", err)
	}
	for _, r := range recs[1:] {
		if len(r) > 2 && r[1] == "face" {
			out = append(out, Photo{Identity: "ea:" + r[2], File: filepath.Join("faces_ea", r[0]), EastAsian: true})
		}
	}
	return out, nil
}

// Embed describes the main face of every photo with faces; it returns the samples and the mean
// time per face of embedding alone (alignment and inference).
func Embed(faces *dnn.Faces, dir string, photos []Photo) ([]Sample, time.Duration, error) {
	var out []Sample
	var spent time.Duration
	for _, p := range photos {
		img, err := recognizers.LoadImage(filepath.Join(dir, p.File))
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", p.File, err)
		}
		found, err := faces.DetectFaces(img)
		i := dnn.Main(found)
		if err != nil || i < 0 {
			img.Close()
			return nil, 0, fmt.Errorf("%s: no face (%v)", p.File, err)
		}
		t0 := time.Now()
		e, err := faces.Embed(img, found[i])
		spent += time.Since(t0)
		img.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", p.File, err)
		}
		out = append(out, Sample{Identity: p.Identity, File: p.File, EastAsian: p.EastAsian, Emb: e})
	}
	return out, spent / time.Duration(max(len(out), 1)), nil
}

// Pairs are the mate (same person) and non-mate distances of a set, sorted ascending.
type Pairs struct {
	Mate, NonMate []float64
}

// Split returns the pairs among East-Asian samples and among the rest (pairs across the two
// groups are left out: a look-alike is searched for among faces like it).
func Split(ss []Sample, dist func(a, b int) float64) (ea, rest Pairs) {
	for i := range ss {
		for j := i + 1; j < len(ss); j++ {
			if ss[i].EastAsian != ss[j].EastAsian {
				continue
			}
			p := &rest
			if ss[i].EastAsian {
				p = &ea
			}
			d := dist(i, j)
			if ss[i].Identity == ss[j].Identity {
				p.Mate = append(p.Mate, d)
			} else {
				p.NonMate = append(p.NonMate, d)
			}
		}
	}
	slices.Sort(ea.Mate)
	slices.Sort(ea.NonMate)
	slices.Sort(rest.Mate)
	slices.Sort(rest.NonMate)
	return ea, rest
}

// Distances is Split over the samples' own embedding distance.
func Distances(ss []Sample) (ea, rest Pairs) {
	return Split(ss, func(a, b int) float64 { return float64(recognizers.Distance(ss[a].Emb, ss[b].Emb)) })
}

// below is the fraction of sorted xs strictly under t.
func below(xs []float64, t float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i, _ := slices.BinarySearch(xs, t)
	return float64(i) / float64(len(xs))
}

// FMR is the fraction of non-mate pairs under distance t; FNMR the fraction of mates at or over it.
func (p Pairs) FMR(t float64) float64  { return below(p.NonMate, t) }
func (p Pairs) FNMR(t float64) float64 { return 1 - below(p.Mate, t) }

// EER is the equal error rate: where FMR and FNMR cross.
func (p Pairs) EER() float64 {
	best, eer := math.Inf(1), 1.0
	for _, t := range append(append([]float64{}, p.Mate...), p.NonMate...) {
		for _, x := range []float64{t, math.Nextafter(t, math.Inf(1))} {
			a, b := p.FMR(x), p.FNMR(x)
			if g := math.Abs(a - b); g < best {
				best, eer = g, (a+b)/2
			}
		}
	}
	return eer
}

// tail is a normal fitted to the non-mate distances' lower half (the tail a look-alike comes
// from), for false-match rates the set is too small to show.
type tail struct{ mu, sd float64 }

func fitTail(nm []float64) tail {
	// Fit mean and spread from the 1st–50th percentiles (robust to the far side).
	n := len(nm)
	if n < 10 {
		return tail{}
	}
	q := func(f float64) float64 { return nm[min(n-1, int(f*float64(n)))] }
	// For a normal, the 50th percentile is mu and the 10th is mu − 1.2816 sd.
	mu := q(0.5)
	sd := (mu - q(0.10)) / 1.2816
	return tail{mu: mu, sd: sd}
}

func (t tail) cdf(x float64) float64 { return 0.5 * math.Erfc(-(x-t.mu)/(t.sd*math.Sqrt2)) }

// quantile is the distance under which a fraction p of non-mates fall.
func (t tail) quantile(p float64) float64 { return t.mu + t.sd*math.Sqrt2*math.Erfinv(2*p-1) }

// OpenSet is one gallery size's operating point.
type OpenSet struct {
	N        int
	FPIR     float64 // the target
	PairFMR  float64 // the pairwise false-match rate it needs: 1 − (1 − FPIR)^(1/N)
	Distance float64 // the threshold that gives it
	FNIR     float64 // mates missed: over the threshold, or outranked by one of N−1 non-mates
	FNIRLo   float64 // 95% Wilson interval over the mate pairs
	FNIRHi   float64
	// Extrapolated is true when PairFMR is below what the non-mate pairs can show (3 / pairs,
	// the rule of three): the threshold then comes from the fitted normal tail.
	Extrapolated bool
}

// At computes the open-set operating point for a gallery of n people at target FPIR.
func (p Pairs) At(n int, fpir float64) OpenSet {
	o := OpenSet{N: n, FPIR: fpir, PairFMR: 1 - math.Pow(1-fpir, 1/float64(n))}
	tl := fitTail(p.NonMate)
	cdf := func(x float64) float64 { return p.FMR(x) }
	if o.PairFMR < 3/float64(max(len(p.NonMate), 1)) {
		o.Extrapolated = true
		o.Distance = tl.quantile(o.PairFMR)
		cdf = tl.cdf
	} else {
		i := int(math.Floor(o.PairFMR * float64(len(p.NonMate))))
		o.Distance = p.NonMate[min(i, len(p.NonMate)-1)]
	}
	// A mate is found when it is under the threshold and nearer than every one of the N−1
	// non-mates in the gallery.
	found := 0.0
	for _, d := range p.Mate {
		if d < o.Distance {
			found += math.Pow(1-cdf(d), float64(n-1))
		}
	}
	m := float64(max(len(p.Mate), 1))
	o.FNIR = 1 - found/m
	o.FNIRLo, o.FNIRHi = wilson(o.FNIR, m)
	return o
}

// wilson is the 95% Wilson score interval of a proportion over n trials.
func wilson(p, n float64) (lo, hi float64) {
	const z = 1.96
	c := (p + z*z/(2*n)) / (1 + z*z/n)
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / (1 + z*z/n)
	return max(0, c-h), min(1, c+h)
}

// TailFMR is the false-match rate at distance t from the normal fitted to the non-mates' tail:
// where the set has too few pairs to show it.
func (p Pairs) TailFMR(t float64) float64 { return fitTail(p.NonMate).cdf(t) }
