package main

import (
	"context"
	"time"

	"github.com/vigil-oss/vigil/recognizers"
)

// verdictsEvery is how often the matcher looks for operators' new verdicts on matches.
const verdictsEvery = 2 * time.Second

// followVerdicts applies the face verdicts given since last (on any node) to this node's gallery:
// a wrong match's face becomes a negative sample of the person it was taken for, a template
// offered for a watch-list entry is added. It returns the newest verdict applied.
func (n *node) followVerdicts(ctx context.Context, last int64) int64 {
	vs, err := n.st.events.FaceVerdictsSince(ctx, last)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("verdicts not read", "err", err)
		}
		return last
	}
	sp := n.gallery.Space()
	for _, v := range vs {
		last = v.ID
		if v.Model != sp.Name {
			continue // another model's face is never compared
		}
		effects := n.gallery.ApplyVerdict(v.Matched, v.Verdict, v.Person, v.Template, recognizers.Embedding(v.Embedding))
		n.log.Info("verdict applied", "event", v.EventID, "verdict", v.Verdict, "matched", v.Matched, "effects", effects)
	}
	return last
}
