//go:build matprofile

package decode

import (
	"testing"

	"gocv.io/x/gocv"

	"github.com/vigil-oss/vigil/streams"
)

// TestNoMatLeaks runs with -tags matprofile: every Mat made from frames is closed.
func TestNoMatLeaks(t *testing.T) {
	us := units(clip(t))
	before := gocv.MatProfile.Count()
	d, _ := New(streams.H264, Options{})
	for _, u := range us {
		f, err := d.Decode(u)
		if err != nil || f == nil {
			continue
		}
		m, err := f.Mat()
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	d.Close()
	if n := gocv.MatProfile.Count() - before; n != 0 {
		t.Fatalf("%d Mats leaked", n)
	}
}
