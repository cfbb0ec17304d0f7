package pipeline

import (
	"context"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/decode"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// sameFaces checks that region detection on img finds the faces (36 px and up) whole-frame
// detection finds, with the same embeddings; it returns how many it compared.
func sameFaces(t *testing.T, faces *dnn.Faces, img gocv.Mat, regions []image.Rectangle, what string) int {
	t.Helper()
	big := func(fs []recognizers.Face) []recognizers.Face {
		var out []recognizers.Face
		for _, f := range fs {
			if f.Box.H >= 36 && !atEdge(f.Box, img.Cols(), img.Rows()) {
				out = append(out, f)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Box.X < out[j].Box.X })
		return out
	}
	whole, err := faces.DetectFaces(img)
	if err != nil {
		t.Fatal(err)
	}
	inRegions, err := faces.DetectRegions(img, regions)
	if err != nil {
		t.Fatal(err)
	}
	w, r := big(whole), big(inRegions)
	if len(w) != len(r) {
		t.Errorf("%s: whole frame %d faces %v, regions %v %d %v", what, len(w), w, regions, len(r), r)
		return 0
	}
	dw, err := faces.Describe(img, w)
	if err != nil {
		t.Fatal(err)
	}
	dr, err := faces.Describe(img, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range dw {
		// The same face, but the region's edge moves YuNet's landmarks by a pixel or so: cosine
		// similarity 0.94 and up, where the door's own threshold is 0.55.
		if d := recognizers.Distance(dw[i].Embedding, dr[i].Embedding); d > space.CosineDistance(0.94) {
			t.Errorf("%s: face %d embeds %.3f apart (whole %v, region %v)", what, i, d, dw[i].Box, dr[i].Box)
		}
	}
	return len(w)
}

// TestRegionDetectionFindsTheSameFaces: on every test photo walked into an empty street, and on
// camsim's scenes, detection on the motion gate's regions finds the faces whole-frame detection
// finds (counts and embeddings).
func TestRegionDetectionFindsTheSameFaces(t *testing.T) {
	td, faces, lib := faceLibrary(t)
	const w, h = 1280, 720
	rng := rand.New(rand.NewPCG(3, 4))
	street := frameOf(w, h, 110, 4, rng)
	photos, compared := 0, 0
	for _, id := range lib.Identities() {
		for _, rel := range lib.Faces[id] {
			side := 150 + rng.IntN(250) // the photo's height in the street: faces of ~50–130 px
			frame := photoIn(t, td, rel, street, w, h, side, rng)
			g := &motionGate{threshold: 1.5, maxIdle: 5 * time.Second}
			g.pass(street, w, h, 0, false, nil)
			ok, regions := g.pass(frame.ToBytes(), w, h, time.Second, false, nil)
			if !ok || regions == nil {
				t.Errorf("%s: gate %v, regions %v", rel, ok, regions)
			} else {
				compared += sameFaces(t, faces, frame, regions, rel)
				photos++
			}
			frame.Close()
		}
	}
	t.Logf("test photos: %d walked in, %d faces found alike by regions and whole frames", photos, compared)
	if compared < photos*3/4 {
		t.Fatalf("only %d faces in %d photos", compared, photos)
	}

	// camsim's scene, every fourth frame of 10 fps, as the e2e test samples it.
	p := camsim.Params{Width: w, Height: h, FPS: 10, GOP: 1, Bitrate: 1500, Seconds: 12}
	clip, err := camsim.BuildClip(context.Background(), lib, p, scenario(lib), 1, os.TempDir()+"/vigil-test-clips")
	if err != nil {
		t.Fatal(err)
	}
	g := &motionGate{threshold: 1.5, maxIdle: 5 * time.Second}
	frames, withRegions, sceneFaces := 0, 0, 0
	eachFrame(t, clip, 4, func(i int, bgr []byte) {
		frames++
		ok, regions := g.pass(bgr, w, h, time.Duration(i)*100*time.Millisecond, false, nil)
		if !ok || regions == nil {
			return
		}
		withRegions++
		m, _ := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, bgr)
		defer m.Close()
		sceneFaces += sameFaces(t, faces, m, regions, fmt.Sprintf("scene frame %d", i))
	})
	t.Logf("scene: %d frames, %d detected on regions, %d faces found alike", frames, withRegions, sceneFaces)
	if withRegions < 5 || sceneFaces < 5 {
		t.Fatal("the scene gave too few region frames to compare")
	}
}

// eachFrame decodes a clip and calls fn with every n-th picture (BGR, valid during the call).
func eachFrame(t *testing.T, clip *camsim.Clip, n int, fn func(i int, bgr []byte)) {
	d, err := decode.New(streams.H264, decode.Options{Mode: decode.All})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, au := range clip.Units {
		key := false
		for _, nal := range au {
			key = key || nal[0]&0x1f == 5
		}
		f, err := d.Decode(&streams.Unit{Codec: streams.H264, NALUs: au, Key: key})
		if err != nil || f == nil || i%n != 0 {
			continue
		}
		fn(i, f.BGR)
	}
}

// TestStillSceneRunsNoDetector: cameras looking at an empty street decode their key frames and
// run the face detector on nothing but their first frame.
func TestStillSceneRunsNoDetector(t *testing.T) {
	td, mdir := testenv.Testdata(t), testenv.Models(t)
	lib, err := camsim.LoadLibrary(td)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := camsim.BuildClip(context.Background(), lib, camsim.Params{Width: 640, Height: 360, FPS: 10, GOP: 1, Bitrate: 400, Seconds: 4},
		nil, 5, os.TempDir()+"/vigil-test-clips")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := startFleet(t, clip, 2, 0, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewMetrics(nil)
	fp := facePool(t, mdir, 1, 8, m, log)
	pl := New(Config{Faces: fp, Gallery: NewGallery(MatchOptions{}), Publisher: &collector{}, Metrics: m, Log: log})
	pl.Start(ctx)
	pool := rtsp.NewPool(log)
	defer pool.Close()
	for i := 1; i <= 2; i++ {
		s, _ := pool.Add(rtsp.Config{ID: fmt.Sprintf("cam%03d", i), URL: fmt.Sprintf("rtsp://%s/cam/%03d", addr, i)})
		if err := pl.AddCamera(fmt.Sprintf("cam%03d", i), s.Stream(), Options{KeyframesOnly: true, Faces: true, MaxIdle: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(8 * time.Second)
	cancel()
	pl.Wait()
	for i := 1; i <= 2; i++ {
		cam := fmt.Sprintf("cam%03d", i)
		sampled := testutilValue(m.sampled.WithLabelValues(cam))
		runs := testutilValue(m.detections.WithLabelValues(cam, "whole")) + testutilValue(m.detections.WithLabelValues(cam, "regions"))
		t.Logf("%s: %.0f key frames decoded, detector runs %.0f", cam, sampled, runs)
		if sampled < 5 || runs > 1 {
			t.Errorf("%s: %.0f key frames decoded, %.0f detector runs; want the first frame only", cam, sampled, runs)
		}
	}
}

// TestDoorFacesAtASmallerScale: a door camera's sub-stream searched for faces of a fifth of its
// height and up (Config.DoorMinFace 0.2: a fifth of the pixels on 640×360), each face found
// refined in a window of the main picture (dnn.Detector.Refine), finds every such face the
// full-scale search finds on the test photos, walked up to a door, and names the people in
// them as well: each photo's nearest other photo is of the same person as often.
func TestDoorFacesAtASmallerScale(t *testing.T) {
	td, faces, lib := faceLibrary(t)
	const w, h, sw, sh = 1280, 720, 640, 360
	minFace := int(0.2 * sh)
	rng := rand.New(rand.NewPCG(5, 6))
	wall := frameOf(w, h, 90, 4, rng)
	type seen struct {
		id          string
		full, sized recognizers.Embedding
	}
	var all []seen
	photos := 0
	var worst float64
	for _, id := range lib.Identities() {
		for _, rel := range lib.Faces[id] {
			side := 360 + rng.IntN(361) // the photo's height in the main picture: a resident up close
			main := photoIn(t, td, rel, wall, w, h, side, rng)
			sub := gocv.NewMat()
			gocv.Resize(main, &sub, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
			full, err := faces.DetectFaces(sub)
			if err != nil {
				t.Fatal(err)
			}
			sized, err := faces.DetectSized(sub, nil, minFace)
			if err != nil {
				t.Fatal(err)
			}
			photos++
			for _, f := range full {
				if f.Box.H < float32(minFace) || atEdge(f.Box, sw, sh) {
					continue
				}
				k := duplicateOf(sized, f)
				if k < 0 {
					t.Errorf("%s: the face at %v (full scale) not found at the door's scale: %v", rel, f.Box, sized)
					continue
				}
				a, c := f, sized[k]
				scaleFace(&a, 2, 2)
				scaleFace(&c, 2, 2)
				b, ok, err := faces.Refine(main, c)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					t.Errorf("%s: the face at %v not found again in its window of the main picture", rel, c.Box)
					continue
				}
				d, err := faces.Describe(main, []recognizers.Face{a, b})
				if err != nil || len(d) != 2 {
					t.Fatalf("%s: describe: %v", rel, err)
				}
				worst = max(worst, float64(recognizers.Distance(d[0].Embedding, d[1].Embedding)))
				all = append(all, seen{id, d[0].Embedding, d[1].Embedding})
			}
			sub.Close()
			main.Close()
		}
	}
	if len(all) < photos*3/4 {
		t.Fatalf("only %d faces in %d photos", len(all), photos)
	}
	// Each face against every other photo's full-scale embedding: is its nearest the same person?
	named := func(e recognizers.Embedding, skip int) string {
		best, id := float32(math.MaxFloat32), ""
		for k, o := range all {
			if d := recognizers.Distance(e, o.full); k != skip && d < best {
				best, id = d, o.id
			}
		}
		return id
	}
	var right, rightSized int
	for i, s := range all {
		if named(s.full, i) == s.id {
			right++
		}
		if named(s.sized, i) == s.id {
			rightSized++
		}
	}
	t.Logf("door scale: %d photos, %d faces of %d px and up found at both scales; nearest other photo the same person: %d full scale, %d at the door's scale (embeddings at most %.3f apart)",
		photos, len(all), minFace, right, rightSized, worst)
	if rightSized < right {
		t.Errorf("the door's scale names %d faces right, full scale %d", rightSized, right)
	}
}

// faceLibrary loads the face models and camsim's library of the test photos.
func faceLibrary(t *testing.T) (td string, faces *dnn.Faces, lib *camsim.Library) {
	t.Helper()
	td, mdir := testenv.Testdata(t), testenv.Models(t)
	faces, err := dnn.NewFaces(mdir, dnn.DetectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(faces.Close)
	if lib, err = camsim.LoadLibrary(td); err != nil {
		t.Fatal(err)
	}
	return td, faces, lib
}

// photoIn is a w×h BGR picture of bg with the test photo at rel, side pixels tall (at most w
// wide), pasted at a random place.
func photoIn(t *testing.T, td, rel string, bg []byte, w, h, side int, rng *rand.Rand) gocv.Mat {
	t.Helper()
	img, err := recognizers.LoadImage(filepath.Join(td, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	ph := gocv.NewMat()
	defer ph.Close()
	gocv.Resize(img, &ph, image.Pt(min(w, max(1, img.Cols()*side/img.Rows())), side), 0, 0, gocv.InterpolationArea)
	frame, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, append([]byte(nil), bg...))
	if err != nil {
		t.Fatal(err)
	}
	at := image.Pt(rng.IntN(max(1, w-ph.Cols())), rng.IntN(max(1, h-ph.Rows())))
	roi := frame.Region(image.Rectangle{Min: at, Max: at.Add(image.Pt(ph.Cols(), ph.Rows()))})
	ph.CopyTo(&roi)
	roi.Close()
	return frame
}

// duplicateOf is the index of the face in fs over half of whose union with f they share, or -1.
func duplicateOf(fs []recognizers.Face, f recognizers.Face) int {
	for i, g := range fs {
		if g.Box.Overlap(f.Box) > 0.5 {
			return i
		}
	}
	return -1
}
