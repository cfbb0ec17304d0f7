package pipeline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's counters, labelled by camera, pool kind and reason.
type Metrics struct {
	sampled  *prometheus.CounterVec
	gated    *prometheus.CounterVec
	still    *prometheus.CounterVec
	drops    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	events   *prometheus.CounterVec
	queueLen *prometheus.GaugeVec
	latency  *prometheus.HistogramVec
	e2e      *prometheus.HistogramVec
	// Dual streams and regions.
	shots       *prometheus.CounterVec
	mainDecoded *prometheus.CounterVec
	mainAhead   *prometheus.CounterVec
	shotsUnused *prometheus.CounterVec
	detections  *prometheus.CounterVec
	undescribed *prometheus.CounterVec
	shotWait    prometheus.Histogram
	// Where a frame's time goes in a worker, by rank (door: a door camera's frame).
	stages *prometheus.HistogramVec
}

// NewMetrics registers the pipeline metrics on reg (nil: unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sampled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_frames_sampled_total", Help: "Frames decoded and sampled for analysis."}, []string{"camera"}),
		gated:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_frames_gated_total", Help: "Sampled frames skipped by the motion gate."}, []string{"camera"}),
		still: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_keyframes_still_total",
			Help: "Sub-stream key frames not decoded: the coded pictures since the last showed the scene still."}, []string{"camera"}),
		drops:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_frames_dropped_total", Help: "Frames dropped before recognition."}, []string{"camera", "pool", "reason"}),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_recognizer_errors_total", Help: "Frames a recognizer failed on."}, []string{"camera", "pool"}),
		events:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_events_total", Help: "Events published."}, []string{"camera", "kind", "matched"}),
		queueLen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_pipeline_queue_length", Help: "Jobs waiting in a recognizer pool's queue."}, []string{"pool"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_pipeline_recognize_seconds", Help: "Recognizer time per frame.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 10)}, []string{"pool"}),
		e2e: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_pipeline_event_latency_seconds", Help: "From the arrival of the shot's access unit to the event on the bus.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 10)}, []string{"kind"}),
		shots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_shots_total",
			Help: "Main-stream pictures asked for by a camera that analyses its sub-stream, by result (ok, missed)."}, []string{"camera", "result"}),
		mainDecoded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_main_frames_decoded_total",
			Help: "Main-stream frames decoded for shots (on demand, and ahead of a door camera's next shot while someone is at the door)."}, []string{"camera"}),
		mainAhead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_main_frames_ahead_total",
			Help: "Of the main-stream frames decoded, those decoded ahead of a door camera's next shot."}, []string{"camera"}),
		shotsUnused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_shots_unused_total",
			Help: "Main-stream shots asked for ahead of a door camera's frame (while a face track is in progress there) that no face found on the frame used."}, []string{"camera"}),
		shotWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_pipeline_shot_seconds",
			Help: "From a worker's request for a main-stream picture to the picture.", Buckets: prometheus.ExponentialBuckets(0.002, 2, 10)}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_detector_runs_total",
			Help: "Face detector runs, by scope: whole (the frame) or regions (where the motion gate saw movement)."}, []string{"camera", "scope"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_pipeline_stage_seconds",
			Help:    "Where an analysed frame's time goes, by pool, stage (ingest: from the access unit's arrival to the queue, its decode and the motion gate; queue: waiting for a worker; cpu: waiting for a core, door cameras' frames first; detect; shot: waiting for the main-stream picture; describe: embedding, liveness and quality) and rank (door: a door camera's frame, taken first; other).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 13)}, []string{"pool", "stage", "rank"}),
		undescribed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pipeline_faces_undescribed_total",
			Help: "Faces found where a track whose passage is published was last seen, and not described again (no main-stream shot, no embedding)."}, []string{"camera"}),
	}
	if reg != nil {
		reg.MustRegister(m.sampled, m.gated, m.still, m.drops, m.errors, m.events, m.queueLen, m.latency, m.e2e, m.shots, m.mainDecoded, m.mainAhead, m.shotsUnused, m.detections, m.undescribed, m.shotWait, m.stages)
	}
	return m
}

// Stages of a frame in a worker (vigil_pipeline_stage_seconds).
const (
	stageIngest = iota
	stageQueue
	stageCPU
	stageDetect
	stageShot
	stageDescribe
	nStages
)

var stageNames = [nStages]string{"ingest", "queue", "cpu", "detect", "shot", "describe"}

// stageTimer holds one pool's stage histograms of one rank, resolved once: a frame records
// its stages without a label lookup.
type stageTimer [nStages]prometheus.Observer

// stageTimers returns a pool's timers: [0] other cameras' frames, [1] door cameras'.
func (m *Metrics) stageTimers(pool string) (t [2]stageTimer) {
	for rank, name := range []string{"other", "door"} {
		for s := range nStages {
			t[rank][s] = m.stages.WithLabelValues(pool, stageNames[s], name)
		}
	}
	return t
}

// observe records d as stage s (nil: nothing is recorded).
func (t *stageTimer) observe(s int, d time.Duration) {
	if t != nil {
		t[s].Observe(d.Seconds())
	}
}

func (m *Metrics) dropped(camera, pool, reason string) {
	m.drops.WithLabelValues(camera, pool, reason).Inc()
}
