package dnn

import (
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/plate"
)

// warped is one warped picture of a plate and the text it shows.
type warped struct {
	name, want string
	img        gocv.Mat
}

// plateSources are the pictures the warps are made from: the synthetic scenes and the real
// plates with one plate whose text is certain (the double-row, crop-only and ambiguous ones
// aside).
func plateSources(t testing.TB, dir string, rows []testdata.Row) []warped {
	var out []warped
	for _, r := range rows {
		synthScene := r.Kind == "plate_synth" && strings.Contains(r.File, "scene_")
		real := r.Kind == "plate" && !strings.ContainsAny(r.Text(), ";+") && !strings.Contains(r.Expected, "crop only") &&
			!strings.Contains(r.Expected, "ambiguous") && !strings.Contains(r.Expected, "double-row")
		if !synthScene && !real {
			continue
		}
		img, err := recognizers.LoadImage(filepath.Join(dir, r.File))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, warped{name: filepath.Base(r.File), want: r.Text(), img: img})
	}
	return out
}

// warpPlates makes n warps of each source with the seed: a perspective turn (one side of the
// picture up to a quarter farther away, tilted up to 8%), a scale that leaves the plate 80–200
// px wide (a gate camera's range; never enlarged), a Gaussian blur of σ up to 1.6 and noise of
// σ up to 10, then JPEG at quality 45–90, as a gate camera's stream would deliver. The caller
// closes the pictures.
func warpPlates(p *Plates, srcs []warped, n int, seed uint64) []warped {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b9))
	// OpenCV's noise comes from its per-thread generator: one thread, seeded, so that a seed
	// makes the same pictures every run.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	gocv.SetRNGSeed(int(seed % (1 << 31)))
	var out []warped
	for _, s := range srcs {
		w, h := float32(s.img.Cols()), float32(s.img.Rows())
		plateW := float64(w)
		if found, err := p.Detect(s.img); err == nil && len(found) > 0 {
			plateW = float64(found[0].Box.W)
		}
		for i := range n {
			turn, tilt := 0.25*rng.Float32(), 0.08*(2*rng.Float32()-1)
			left := rng.IntN(2) == 0
			dst := [4]gocv.Point2f{{X: 0, Y: 0}, {X: w, Y: 0}, {X: w, Y: h}, {X: 0, Y: h}}
			k := 1 // the far side shrinks towards its middle
			if left {
				k = 0
			}
			far := [2]int{k, 3 - k}
			dst[far[0]].Y += turn * h / 2
			dst[far[1]].Y -= turn * h / 2
			for j := range dst {
				dst[j].Y += tilt * h * (dst[j].X/w - 0.5)
			}
			src := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: w, Y: 0}, {X: w, Y: h}, {X: 0, Y: h}})
			dv := gocv.NewPoint2fVectorFromPoints(dst[:])
			m := gocv.GetPerspectiveTransform2f(src, dv)
			pm := gocv.NewMat()
			gocv.WarpPerspectiveWithParams(s.img, &pm, m, image.Pt(int(w), int(h)), gocv.InterpolationLinear, gocv.BorderReplicate, colorBlack)
			src.Close()
			dv.Close()
			m.Close()
			scale := min(1, (80+120*rng.Float64())/plateW)
			sm := gocv.NewMat()
			gocv.Resize(pm, &sm, image.Pt(max(16, int(float64(w)*scale)), max(16, int(float64(h)*scale))), 0, 0, gocv.InterpolationArea)
			pm.Close()
			if sigma := 1.6 * rng.Float64(); sigma > 0.3 {
				gocv.GaussianBlur(sm, &sm, image.Pt(0, 0), sigma, sigma, gocv.BorderReplicate)
			}
			noise := gocv.NewMatWithSize(sm.Rows(), sm.Cols(), gocv.MatTypeCV16SC3)
			gocv.RandN(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(10*rng.Float64(), 10*rng.Float64(), 10*rng.Float64(), 0))
			sm16 := gocv.NewMat()
			sm.ConvertTo(&sm16, gocv.MatTypeCV16SC3)
			gocv.Add(sm16, noise, &sm16)
			sm16.ConvertTo(&sm, gocv.MatTypeCV8UC3)
			noise.Close()
			sm16.Close()
			buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, sm, []int{gocv.IMWriteJpegQuality, 45 + rng.IntN(46)})
			sm.Close()
			if err != nil {
				continue
			}
			img, err := gocv.IMDecode(buf.GetBytes(), gocv.IMReadColor)
			buf.Close()
			if err != nil {
				continue
			}
			out = append(out, warped{name: s.name + "#" + strconv.Itoa(i), want: s.want, img: img})
		}
	}
	return out
}

// readWarps reads every warp: how many were read exactly, the misses, and each warp's best
// reading (the first plate found) for the passages.
func readWarps(t testing.TB, p *Plates, ws []warped) (exact int, misses []string, reads [][]plate.Char) {
	for _, w := range ws {
		got, err := p.Read(w.img)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		hit := false
		for _, g := range got {
			hit = hit || g.Text == w.want
		}
		var r []plate.Char
		if len(got) > 0 {
			for _, c := range got[0].Chars {
				r = append(r, plate.Char{Char: c.Char, Conf: c.Conf})
			}
		}
		reads = append(reads, r)
		if hit {
			exact++
		} else {
			misses = append(misses, w.name+" "+w.want+" → "+strings.Join(texts(got), ","))
		}
	}
	return exact, misses, reads
}

// TestPlateWarps: on perspective, scale, blur, noise and JPEG warps of the test plates (a seed
// never used while tuning), passages of 5 frames of a car at a gate, each frame a different
// warp, are read exactly at least 95% of the time once their frames are voted (plate.Vote, as
// the tracker does). Single frames are reported beside. PLATE_WARP_SEED and PLATE_PASSAGES
// choose others.
func TestPlateWarps(t *testing.T) {
	p, dir, rows := setupPlates(t)
	p.Closer = true // as the pipeline reads gate cameras
	srcs := plateSources(t, dir, rows)
	defer func() {
		for _, s := range srcs {
			s.img.Close()
		}
	}()
	const frames = 5
	seed, passages := uint64(20261130), 4
	if v, err := strconv.ParseUint(os.Getenv("PLATE_WARP_SEED"), 10, 64); err == nil {
		seed = v
	}
	if v, err := strconv.Atoi(os.Getenv("PLATE_PASSAGES")); err == nil {
		passages = v
	}
	ws := warpPlates(p, srcs, passages*frames, seed)
	defer func() {
		for _, w := range ws {
			w.img.Close()
		}
	}()
	exact, misses, reads := readWarps(t, p, ws)
	for _, m := range misses {
		t.Log("frame miss:", m)
	}
	voted, majority, total := 0, 0, 0
	for i := 0; i+frames <= len(ws); i += frames {
		text, _, _ := plate.Vote(reads[i : i+frames])
		total++
		if text == ws[i].want {
			voted++
		} else {
			t.Logf("passage miss: %s %s → %s", ws[i].name, ws[i].want, text)
		}
		if wholeMajority(reads[i:i+frames]) == ws[i].want {
			majority++
		}
	}
	frameRate, passageRate := float64(exact)/float64(len(ws)), float64(voted)/float64(total)
	t.Logf("%d sources, %d frames: %d read exactly (%.1f%%); %d passages of %d frames: %d read exactly (%.1f%%) voted by position, %d (%.1f%%) by the most common whole reading (the reference: how the tracker chose before)",
		len(srcs), len(ws), exact, 100*frameRate, total, frames, voted, 100*passageRate, majority, 100*float64(majority)/float64(total))
	if len(srcs) < 18 || passageRate < 0.95 {
		t.Errorf("passages read exactly: %.1f%% of %d, want ≥ 95%%", 100*passageRate, total)
	}
}

// wholeMajority is the most common well-formed whole reading of a passage (ties: the more
// confident), as the tracker chose before voting by position.
func wholeMajority(reads [][]plate.Char) string {
	n, conf := map[string]int{}, map[string]float32{}
	for _, r := range reads {
		var b strings.Builder
		for _, c := range r {
			b.WriteString(c.Char)
		}
		text := b.String()
		if !plate.Valid(text, "") {
			continue
		}
		n[text]++
		for _, c := range r {
			conf[text] += c.Conf
		}
	}
	best := ""
	for text := range n {
		if best == "" || n[text] > n[best] || n[text] == n[best] && conf[text] > conf[best] {
			best = text
		}
	}
	return best
}
