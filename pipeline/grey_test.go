package pipeline

import (
	"math"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/internal/testkit/clips"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/decode"
)

// TestGreyThumbsMatchBGR: the gate's thumbnail made from a decoded picture's grey plane is the
// one made from its BGR conversion, within what the two grey formulas differ by on camsim's
// scenes, and a privacy mask blacks out the same samples in both (the gate never wakes on what
// a mask hides).
func TestGreyThumbsMatchBGR(t *testing.T) {
	us := clips.Units(clips.Small(t), time.Time{})
	mask := privacy.NewPainter(privacy.Masks{{{0, 0}, {0.4, 0}, {0.4, 1}, {0, 0.7}}})
	for _, p := range []*privacy.Painter{nil, mask} {
		d, err := decode.New(streams.H264, decode.Options{Mode: decode.All})
		if err != nil {
			t.Fatal(err)
		}
		thumbs := &greyThumbs{mask: p}
		var sum, worst float64
		var n, masked int
		for _, u := range us {
			l, err := d.DecodeLuma(u)
			if err != nil || l == nil {
				t.Fatalf("unit at %v: %v", u.PTS, err)
			}
			grey := thumbs.of(l)
			f, err := d.BGR()
			if err != nil {
				t.Fatal(err)
			}
			p.BGR(f.BGR, f.Width, f.Height, f.Stride)
			want := thumbnail(f.BGR, f.Width, f.Height)
			if grey == nil || len(grey) != len(want) {
				t.Fatalf("thumbnail from the grey plane: %d blocks, want %d", len(grey), len(want))
			}
			for i := range want {
				diff := math.Abs(float64(grey[i] - want[i]))
				sum += diff
				worst = max(worst, diff)
				n++
				if want[i] == 0 {
					masked++
					if grey[i] != 0 {
						t.Fatalf("mask %v: block %d is black in BGR, %.1f from the grey plane", p != nil, i, grey[i])
					}
				}
			}
		}
		d.Close()
		t.Logf("mask %v: mean difference %.2f grey levels, worst %.1f, %d black blocks", p != nil, sum/float64(n), worst, masked)
		if sum/float64(n) > 4 || worst > 24 {
			t.Fatalf("mask %v: grey-plane thumbnails differ from BGR ones by %.2f on average, %.1f at worst", p != nil, sum/float64(n), worst)
		}
		if p != nil && masked < n/4 {
			t.Fatalf("a mask over ~a third of the picture blacked out %d of %d blocks", masked, n)
		}
	}
}
