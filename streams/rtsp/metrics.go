package rtsp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports every camera's status as Prometheus metrics with a camera label. It reads
// snapshots at scrape time, so the media path pays nothing for metrics.
type Collector struct {
	pool *Pool

	up, state, fps, bitrate, width, height, lastKey, readers *prometheus.Desc
	units, bytes, reconnects, lost, malformed, dropped       *prometheus.Desc
}

// NewCollector returns a collector over pool.
func NewCollector(pool *Pool) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vigil_camera_"+name, help, append([]string{"camera"}, labels...), nil)
	}
	return &Collector{
		pool:       pool,
		up:         d("up", "1 when the camera session is live."),
		state:      d("state", "1 for the session's current state.", "state"),
		fps:        d("fps", "Access units per second over the last second."),
		bitrate:    d("bitrate_bits_per_second", "Video bitrate over the last second."),
		width:      d("width_pixels", "Picture width from the SPS."),
		height:     d("height_pixels", "Picture height from the SPS."),
		lastKey:    d("last_keyframe_timestamp_seconds", "Unix time of the last key frame."),
		readers:    d("readers", "Readers attached to the camera's stream."),
		units:      d("units_total", "Access units received."),
		bytes:      d("bytes_total", "Video payload bytes received."),
		reconnects: d("reconnects_total", "Sessions that ended and were retried."),
		lost:       d("rtp_lost_packets_total", "RTP packets lost on the network."),
		malformed:  d("malformed_total", "Packets, NAL units or parameter sets refused as malformed."),
		dropped:    d("dropped_units_total", "Access units lost by readers that fell behind.", "reason"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.state, c.fps, c.bitrate, c.width, c.height, c.lastKey,
		c.readers, c.units, c.bytes, c.reconnects, c.lost, c.malformed, c.dropped} {
		ch <- d
	}
}

var allStates = []State{StateConnecting, StateLive, StateBackoff, StateFailed}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ctr := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range c.pool.Statuses() {
		id := s.ID
		up := 0.0
		if s.State == StateLive {
			up = 1
		}
		g(c.up, up, id)
		for _, st := range allStates {
			v := 0.0
			if s.State == st {
				v = 1
			}
			g(c.state, v, id, string(st))
		}
		g(c.fps, s.FPS, id)
		g(c.bitrate, float64(s.Bitrate), id)
		g(c.width, float64(s.Width), id)
		g(c.height, float64(s.Height), id)
		if s.LastKeyframe != nil {
			g(c.lastKey, float64(s.LastKeyframe.UnixNano())/1e9, id)
		}
		g(c.readers, float64(s.Readers), id)
		ctr(c.units, s.Units, id)
		ctr(c.bytes, s.Bytes, id)
		ctr(c.reconnects, s.Reconnects, id)
		ctr(c.lost, s.LostPackets, id)
		ctr(c.malformed, s.Malformed, id)
		ctr(c.dropped, s.Dropped, id, "reader_behind")
	}
}
