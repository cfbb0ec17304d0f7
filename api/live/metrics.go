package live

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The relay's Prometheus metrics.

func (r *Relay) initMetrics() {
	r.nacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_live_nack_packets_total",
		Help: "Packets viewers reported lost: resent, over_budget (the viewer is losing too much to repair), repeat (resent just now or 3 times already), gone (older than the history)."}, []string{"result"})
	r.nackGone, r.nackOver = r.nacks.WithLabelValues("gone"), r.nacks.WithLabelValues("over_budget")
	r.nackRepeat, r.nackResent = r.nacks.WithLabelValues("repeat"), r.nacks.WithLabelValues("resent")
	r.viewersGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_live_viewers", Help: "WebRTC viewers connected, by camera."}, []string{"camera"})
	r.sessionsCtr = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_live_sessions_total",
		Help: "WebRTC sessions ended, by how: closed (DELETE), gone (the browser went away), failed (ICE never connected), shed (the node was overloaded), refused."}, []string{"end"})
	r.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_live_frames_dropped_total",
		Help: "Frames a viewer lost because it fell behind (it resumes at the next key frame), by camera."}, []string{"camera"})
	r.firstFrame = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_live_first_frame_seconds",
		Help: "From the WHEP offer to the first frame written to the viewer.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)})
}
