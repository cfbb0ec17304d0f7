package dnn_test

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/faceeval"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// TestModelsOnEastAsianFaces embeds every face photo (testdata/faces and faces_ea) with both
// models and compares them where it matters at the reference site: Intel's 0095 must separate
// East-Asian people much better than the dlib port, and its calibrated door threshold must keep
// East-Asian false matches rare on these photos. The full FNIR/FPIR table is bench/faces.
func TestModelsOnEastAsianFaces(t *testing.T) {
	mdir, dir := testenv.Models(t), testenv.Testdata(t)
	photos, err := faceeval.Photos(dir)
	if err != nil {
		t.Fatal(err)
	}
	eer := map[string][2]float64{}
	for _, sp := range space.Spaces() {
		f, err := dnn.NewFacesIn(mdir, sp, dnn.DetectorOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ss, perFace, err := faceeval.Embed(f, dir, photos)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ea, rest := faceeval.Distances(ss)
		eer[sp.Name] = [2]float64{ea.EER(), rest.EER()}
		t.Logf("%-10s %d photos, %.1f ms/face | East Asian: %d mate / %d non-mate pairs, EER %.3f, at the door threshold FMR %.4f FNMR %.3f | rest: EER %.3f, FMR %.4f FNMR %.3f",
			sp.Name, len(ss), perFace.Seconds()*1000, len(ea.Mate), len(ea.NonMate), ea.EER(), ea.FMR(float64(sp.Door)), ea.FNMR(float64(sp.Door)),
			rest.EER(), rest.FMR(float64(sp.Door)), rest.FNMR(float64(sp.Door)))
		if sp.Name == space.DlibV1.Name && (rest.FNMR(0.6) != 0 || rest.FMR(0.6) != 0) {
			t.Errorf("dlib: western identities do not separate at dlib's 0.6")
		}
		if sp.Name == space.Intel0095.Name {
			if fmr := ea.FMR(float64(sp.Door)); fmr > 0.005 {
				t.Errorf("intel-0095: East-Asian false-match rate %.4f at the door threshold", fmr)
			}
			if fnmr := ea.FNMR(float64(sp.Possible)); fnmr > 0.25 {
				t.Errorf("intel-0095: East-Asian mates missed at the search threshold: %.3f", fnmr)
			}
		}
	}
	in, dl := eer[space.Intel0095.Name], eer[space.DlibV1.Name]
	if !(in[0] < dl[0]/2) || in[0] > 0.08 {
		t.Errorf("East-Asian EER: intel-0095 %.3f, dlib %.3f: the default must be at least twice as good and under 0.08", in[0], dl[0])
	}
}
