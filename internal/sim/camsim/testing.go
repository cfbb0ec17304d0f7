package camsim

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
)

// ErrNoTestdata means the shared test photo set is not beside the repository.
var ErrNoTestdata = errors.New("camsim: shared testdata not found")

// SharedSmallClip is SmallClip from the shared test photo set; tests skip on ErrNoTestdata.
func SharedSmallClip(ctx context.Context) (*Clip, error) {
	dir := testdata.Dir()
	if dir == "" {
		return nil, ErrNoTestdata
	}
	lib, err := LoadLibrary(dir)
	if err != nil {
		return nil, err
	}
	return SmallClip(ctx, lib)
}

// SmallClip builds (or loads from a cache shared by test runs) a short 320x240 clip with one face
// and one plate, for tests that need real H.264 but not a realistic scene.
func SmallClip(ctx context.Context, lib *Library) (*Clip, error) {
	p := Params{Width: 320, Height: 240, FPS: 25, GOP: 0.5, Bitrate: 300, Seconds: 4}
	evs := []Event{
		{Kind: "face", Identity: "obama", Start: 0.2, Duration: 2, Size: 60},
		{Kind: "plate", Plate: lib.Plates[0].Text, Start: 2.2, Duration: 1.5, Size: 90},
	}
	for i := range evs {
		if err := lib.Resolve(&evs[i]); err != nil {
			return nil, err
		}
	}
	return BuildClip(ctx, lib, p, evs, 1, filepath.Join(os.TempDir(), "vigil-test-clips"))
}
