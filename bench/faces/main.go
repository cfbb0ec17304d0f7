// Command faces measures vigil's face models the way the access-control field does (NIST FRVT
// 1:N): FNIR at FPIR 1% and 0.3% for galleries of 100 to 39,000 people, East-Asian faces apart
// from the rest, with the time per face, the pairs behind every figure and a plot of the
// distance distributions (--png). Models: each space vigil knows, and a score fusion of the two.
// The dlib port is also measured on go-face's 1,286 real dlib descriptors of 134 K-pop idols.
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/faceeval"
	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

var (
	galleries = []int{100, 1000, 10000, 39000}
	fpirs     = []float64{0.01, 0.003}
)

// result is one model's pairs on the photos.
type result struct {
	name     string
	perFace  time.Duration
	ea, rest faceeval.Pairs
	space    *space.Space
}

func main() {
	png := flag.String("png", "bench/faces.png", "where to write the distance distributions")
	flag.Parse()
	log.SetFlags(0)
	mdir, err := models.Dir(os.Getenv("VIGIL_MODELS"))
	if err != nil {
		log.Fatal(err)
	}
	dir := testdata.Dir()
	photos, err := faceeval.Photos(dir)
	if err != nil {
		log.Fatal(err)
	}
	var results []result
	samples := map[string][]faceeval.Sample{}
	for _, sp := range space.Spaces() {
		f, err := dnn.NewFacesIn(mdir, sp, dnn.DetectorOptions{})
		if err != nil {
			log.Fatal(err)
		}
		ss, per, err := faceeval.Embed(f, dir, photos)
		f.Close()
		if err != nil {
			log.Fatal(err)
		}
		samples[sp.Name] = ss
		ea, rest := faceeval.Distances(ss)
		results = append(results, result{name: sp.Name, perFace: per, ea: ea, rest: rest, space: &sp})
	}
	results = append(results, fusion(samples[space.Intel0095.Name], samples[space.DlibV1.Name], results))
	nEA, nRest := 0, 0
	for _, p := range photos {
		if p.EastAsian {
			nEA++
		} else {
			nRest++
		}
	}
	fmt.Printf("photos: %d East-Asian (testdata/faces_ea and the K-pop idols of testdata/faces), %d others; pairs within each group\n", nEA, nRest)
	fmt.Printf("FNIR: mates missed (over the threshold, or outranked by one of the N−1 others) at the threshold that gives the FPIR;\n")
	fmt.Printf("  * the pairwise false-match rate FPIR needs (1 − (1 − FPIR)^(1/N)) is below 3 / non-mate pairs: the threshold comes from a normal fitted to the non-mate tail\n")
	fmt.Printf("  [lo–hi] is the 95%% Wilson interval over the mate pairs\n\n")
	for _, r := range results {
		for _, g := range []struct {
			name string
			p    faceeval.Pairs
		}{{"East Asian", r.ea}, {"rest", r.rest}} {
			printRow(r, g.name, g.p)
		}
	}
	if idols, err := idolPairs(filepath.Join(dir, "faces", "go-face-idols.json")); err == nil {
		printRow(result{name: "dlib (real descriptors)"}, "K-pop idols", idols)
	} else {
		log.Printf("idols: %v", err)
	}
	fmt.Println()
	for _, r := range results {
		if r.space == nil {
			continue
		}
		sp := r.space
		fmt.Printf("%s thresholds: door %.3f (pairwise FMR on East-Asian photos %.5f of %d non-mate pairs, %.2g from the fitted tail, vigil assumes %.2g; FNMR %.3f), search \"very likely\" %.3f, \"possible\" %.3f (FMR %.4f, FNMR %.3f)\n",
			sp.Name, sp.Door, r.ea.FMR(float64(sp.Door)), len(r.ea.NonMate), r.ea.TailFMR(float64(sp.Door)), sp.DoorFMR, r.ea.FNMR(float64(sp.Door)), sp.VeryLikely, sp.Possible,
			r.ea.FMR(float64(sp.Possible)), r.ea.FNMR(float64(sp.Possible)))
	}
	if *png != "" {
		if err := plot(*png, results); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("\ndistance distributions: %s\n", *png)
	}
}

func printRow(r result, group string, p faceeval.Pairs) {
	t := ""
	if r.perFace > 0 {
		t = fmt.Sprintf(", %.1f ms/face", r.perFace.Seconds()*1000)
	}
	fmt.Printf("%-24s %-11s EER %.3f (%d mate, %d non-mate pairs%s)\n", r.name, group, p.EER(), len(p.Mate), len(p.NonMate), t)
	for _, fp := range fpirs {
		fmt.Printf("    FPIR %-4s", fmt.Sprintf("%.1f%%", fp*100))
		for _, n := range galleries {
			o := p.At(n, fp)
			mark := " "
			if o.Extrapolated {
				mark = "*"
			}
			fmt.Printf("  N=%-6d FNIR %.3f%s [%.2f–%.2f]", n, o.FNIR, mark, o.FNIRLo, o.FNIRHi)
		}
		fmt.Println()
	}
}

// fusion averages the two models' distances after scaling each by its own non-mate spread (a
// z-score against the East-Asian non-mates), pair by pair.
func fusion(a, b []faceeval.Sample, rs []result) result {
	z := func(ss []faceeval.Sample, nm []float64) func(i, j int) float64 {
		var mu, sd float64
		for _, d := range nm {
			mu += d / float64(len(nm))
		}
		for _, d := range nm {
			sd += (d - mu) * (d - mu) / float64(len(nm))
		}
		sd = math.Sqrt(sd)
		return func(i, j int) float64 {
			return (float64(space.Distance(ss[i].Emb, ss[j].Emb)) - mu) / sd
		}
	}
	za, zb := z(a, rs[0].ea.NonMate), z(b, rs[1].ea.NonMate)
	ea, rest := faceeval.Split(a, func(i, j int) float64 { return (za(i, j) + zb(i, j)) / 2 })
	return result{name: "fusion (z-score mean)", perFace: rs[0].perFace + rs[1].perFace, ea: ea, rest: rest}
}

// idolPairs reads go-face's real dlib descriptors of K-pop idols.
func idolPairs(path string) (faceeval.Pairs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return faceeval.Pairs{}, err
	}
	var f struct {
		Faces []struct {
			Descriptor string `json:"descriptor"`
			Idol       string `json:"idol_id"`
		} `json:"faces"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return faceeval.Pairs{}, err
	}
	var ss []faceeval.Sample
	for _, x := range f.Faces {
		raw, err := base64.StdEncoding.DecodeString(x.Descriptor)
		if err != nil || len(raw) != 512 {
			continue
		}
		v := make([]float32, 128)
		event.UnpackVector(raw, v)
		ss = append(ss, faceeval.Sample{Identity: x.Idol, EastAsian: true, Emb: v})
	}
	ea, _ := faceeval.Distances(ss)
	return ea, nil
}
