package cameras

import "github.com/vigil-oss/vigil/streams/rtsp"

// Analysis is what a node's pipeline did with a camera's frames since it started analysing it:
// how an operator sees which cameras are under-analysed when the node is over capacity.
type Analysis struct {
	Sampled uint64 `json:"sampled"` // frames decoded and sampled
	Gated   uint64 `json:"gated"`   // of those, held by the motion gate: nothing moved
	Still   uint64 `json:"still"`   // key frames not decoded at all: the coded stream showed the scene still
	Offered uint64 `json:"offered"` // frames offered to a recognizer pool (one per pool)
	Dropped uint64 `json:"dropped"` // offered frames dropped before recognition
	// DropRatio is Dropped / Offered: above 0.01 the camera is under-analysed.
	DropRatio float64 `json:"drop_ratio"`
}

// NewAnalysis fills DropRatio.
func NewAnalysis(sampled, gated, still, offered, dropped uint64) *Analysis {
	a := &Analysis{Sampled: sampled, Gated: gated, Still: still, Offered: offered, Dropped: dropped}
	if offered > 0 {
		a.DropRatio = float64(dropped) / float64(offered)
	}
	return a
}

// State is a camera as the node running it reports it to the site (with its heartbeat): the
// session's status and, when the camera is analysed, its analysis.
type State struct {
	rtsp.Status
	Analysis *Analysis `json:"analysis,omitempty"`
}
