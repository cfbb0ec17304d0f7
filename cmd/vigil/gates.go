package main

import (
	"context"
	"time"

	"github.com/vigil-oss/vigil/internal/core/lifecycle"
)

// gateCamera reports whether a camera's plates open a barrier.
func (n *node) gateCamera(camera string) bool {
	return n.engine != nil && len(n.engine.GatesWithCamera(camera)) > 0
}

// autoUnlockComponent opens doors for the faces and gates for the plates their cameras
// recognise, and watches the car parks for visitors' cars past their window.
func (n *node) autoUnlockComponent() lifecycle.Component {
	return subscription("auto-unlock", func(ctx context.Context) (func(), error) {
		stopFaces, err := n.engine.FollowFaces(ctx, n.bus, n.log, n.decidesFor)
		if err != nil {
			return nil, err
		}
		stopPlates, err := n.engine.FollowPlates(ctx, n.bus, n.log, n.decidesFor)
		if err != nil {
			stopFaces()
			return nil, err
		}
		go n.engine.WatchOverstays(ctx, time.Minute, n.log)
		return func() { stopFaces(); stopPlates() }, nil
	})
}
