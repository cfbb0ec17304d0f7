package pipeline

import (
	"context"
	"os"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/decode"
)

// benchFrames decodes key frames of the 720p e2e clip: people and a car, as cameras see them.
func benchFrames(b *testing.B) ([]gocv.Mat, string) {
	td := testdata.Dir()
	mdir, err := models.Dir(os.Getenv("VIGIL_MODELS"))
	if td == "" || err != nil {
		b.Skip("no models or testdata")
	}
	lib, _ := camsim.LoadLibrary(td)
	p := camsim.Params{Width: 1280, Height: 720, FPS: 10, GOP: 0.5, Bitrate: 1500, Seconds: 12}
	clip, err := camsim.BuildClip(context.Background(), lib, p, scenario(lib), 1, os.TempDir()+"/vigil-test-clips")
	if err != nil {
		b.Fatal(err)
	}
	d, _ := decode.New(streams.H264, decode.Options{Mode: decode.KeyOnly})
	defer d.Close()
	var mats []gocv.Mat
	for _, au := range clip.Units {
		key := false
		for _, n := range au {
			key = key || n[0]&0x1f == 5
		}
		f, err := d.Decode(&streams.Unit{Codec: streams.H264, NALUs: au, Key: key})
		if err == nil && f != nil {
			m, _ := f.Mat()
			mats = append(mats, m)
		}
	}
	return mats, mdir
}

// BenchmarkRecognizers reports frames per second per core through the face and plate
// recognizers on 720p frames, and the pipeline's overhead over bare model inference: the face
// path's time against the sum of detect + embed + liveness timed alone in the same run.
func BenchmarkRecognizers(b *testing.B) {
	dnn.SetThreads(1) // per core
	defer dnn.SetThreads(0)
	mats, mdir := benchFrames(b)
	defer func() {
		for _, m := range mats {
			m.Close()
		}
	}()
	faces, err := dnn.NewFaces(mdir, dnn.DetectorOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer faces.Close()
	plates, _ := dnn.NewPlates(mdir)
	defer plates.Close()
	fr := &FaceRecognizer{Faces: faces}
	pr := &PlateRecognizer{Plates: plates}
	var nFaces, nPlates int
	var tFace, tPlate, tBare time.Duration
	for i := 0; i < b.N; i++ {
		for _, m := range mats {
			t0 := time.Now()
			o := &Observation{}
			_ = fr.Recognize(m, o)
			tFace += time.Since(t0)
			nFaces += len(o.Faces)
			t1 := time.Now()
			o2 := &Observation{}
			_ = pr.Recognize(m, o2)
			tPlate += time.Since(t1)
			nPlates += len(o2.Plates)
			// Bare inference: the same model calls with nothing around them.
			t2 := time.Now()
			fs, _ := faces.DetectFaces(m)
			for _, f := range fs {
				_, _ = faces.Embed(m, f)
				_, _ = faces.Liveness.Liveness(m, f)
			}
			tBare += time.Since(t2)
		}
	}
	frames := float64(b.N * len(mats))
	b.ReportMetric(frames/tFace.Seconds(), "face-frames/s")
	b.ReportMetric(float64(nFaces)/tFace.Seconds(), "faces/s")
	b.ReportMetric(frames/tPlate.Seconds(), "plate-frames/s")
	b.ReportMetric(float64(nPlates)/tPlate.Seconds(), "plates/s")
	b.ReportMetric(tFace.Seconds()/tBare.Seconds()-1, "face-overhead")
}
