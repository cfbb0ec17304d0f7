package main

import (
	"context"
	"sync"

	"github.com/vigil-oss/vigil/cameras"
	"github.com/vigil-oss/vigil/cluster"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/lifecycle"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// running is the cameras this node runs, as the registry (or the configuration) described them.
type running struct {
	mu     sync.Mutex
	cams   map[string]config.Camera
	epochs map[string]uint64 // the fence epoch each camera runs under (its events and segments carry it)
	bg     background
}

// startCameras runs the configured cameras; with a database, the registry's instead: seeded
// from the configuration, then followed (a camera added, changed or removed through the API or
// `vigil cameras` starts, restarts or stops within seconds), each camera run by the one node that
// holds its lease (placement.go); a node alone holds them all.
func (n *node) startCameras() error {
	n.running.cams, n.running.epochs = map[string]config.Camera{}, map[string]uint64{}
	if n.st == nil {
		return n.reconcile(n.cfg.Cameras)
	}
	n.registry = cameras.New(n.st.pool, n.trail)
	ctx := context.Background()
	if added, err := n.registry.Seed(ctx, n.cfg.Cameras); err != nil {
		return err
	} else if added > 0 {
		n.log.Info("camera registry seeded from the configuration", "cameras", added)
	}
	if !n.cfg.Cluster.Has(config.RoleCameras) {
		return nil // a node without the cameras role keeps the registry for the API, runs none
	}
	list, err := n.registry.List(ctx)
	if err != nil {
		return err
	}
	if n.placer.leases, err = cluster.OpenLeases(ctx, n.bus.JetStream(), n.clusterStore(), n.members.Self().ID); err != nil {
		return err
	}
	n.placer.held.Store(n.placer.leases)
	n.running.bg.start(n.placer.leases.Watch)
	n.placer.orphan = map[string]int{}
	n.place(ctx, configs(list))
	n.running.bg.start(func(ctx context.Context) {
		n.registry.Watch(ctx, n.log, func(cs []cameras.Camera) { n.place(ctx, configs(cs)) })
	})
	// A node that frees cameras (a handover, a planned stop) asks the others for a round at once.
	n.placer.kick = make(chan struct{}, 1)
	unsub, err := n.bus.Subscribe(roundSubject, func(string, []byte) { n.placer.wake() })
	if err != nil {
		return err
	}
	n.running.bg.start(func(ctx context.Context) {
		<-ctx.Done()
		unsub()
	})
	n.running.bg.everyOr(placementRound, n.placer.kick, n.placeRound)
	return nil
}

func configs(cs []cameras.Camera) []config.Camera {
	out := make([]config.Camera, len(cs))
	for i, c := range cs {
		out[i] = c.Config()
	}
	return out
}

// reconcile makes the running cameras what want says: new ones started, removed ones stopped,
// changed ones restarted. A camera that fails to start is reported and the rest go on.
func (n *node) reconcile(want []config.Camera) error {
	n.running.mu.Lock()
	defer n.running.mu.Unlock()
	seen := map[string]bool{}
	var first error
	for _, c := range want {
		seen[c.ID] = true
		cur, ok := n.running.cams[c.ID]
		epoch := n.placer.epoch(c.ID)
		if ok && sameCamera(cur, c) && n.running.epochs[c.ID] == epoch {
			continue
		}
		if ok {
			n.stopCamera(c.ID)
		}
		if err := n.addCamera(c, epoch); err != nil {
			n.log.Error("camera not started", "camera", c.ID, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		n.running.cams[c.ID], n.running.epochs[c.ID] = c, epoch
		if ok {
			n.log.Info("camera restarted with its new settings", "camera", c.ID)
		} else {
			n.log.Info("camera started", "camera", c.ID, "url", c.URL)
		}
	}
	for id := range n.running.cams {
		if !seen[id] {
			n.stopCamera(id)
			delete(n.running.cams, id)
			delete(n.running.epochs, id)
			n.log.Info("camera stopped: no longer registered", "camera", id)
		}
	}
	return first
}

func sameCamera(a, b config.Camera) bool {
	return a.URL == b.URL && a.DetectURL == b.DetectURL && a.Transport == b.Transport && a.Analyse == b.Analyse && a.FPS == b.FPS && a.IdleFPS == b.IdleFPS && a.FootageDays == b.FootageDays &&
		a.Masks.Equal(b.Masks) && a.MaskRecording == b.MaskRecording
}

// stopCamera stops analysing a camera, then its session (its recorder stores the segment in
// progress as the stream closes).
func (n *node) stopCamera(id string) {
	if n.pipe != nil {
		n.pipe.RemoveCamera(id)
	}
	n.detects.Remove(id)
	n.cameras.Remove(id)
}

// camerasComponent connects every camera and hands its stream to the pipeline and a recorder.
func (n *node) camerasComponent() lifecycle.Component {
	return lifecycle.Component{Name: "cameras", Start: func(context.Context) error {
		pool := rtsp.NewPool(n.log)
		if n.cfg.Live.Enabled {
			// Every camera keeps its current GOP, so a live view starts on it at once (≤ 300
			// frames, 4 MB: ~375 KB for a 2 s GOP at 1.5 Mb/s).
			pool.KeepGOP(300, 4<<20)
		}
		n.running.mu.Lock() // the cluster's heartbeat reads it
		n.cameras, n.detects = pool, rtsp.NewPool(n.log)
		n.running.mu.Unlock()
		n.reg.MustRegister(rtsp.NewCollector(n.cameras))
		if err := n.startCameras(); err != nil {
			n.running.bg.stop()
			n.cameras.Close()
			n.detects.Close()
			return err
		}
		return nil
	}, Stop: func() {
		n.running.bg.stop()
		n.cameras.Close()
		n.detects.Close()
		n.releaseAll() // after the sessions closed: each recorder stored its segment in progress
	}}
}

func (n *node) addCamera(cam config.Camera, epoch uint64) error {
	session := func(url config.SecretURL) rtsp.Config {
		tr := cam.Transport
		if tr == "" {
			tr = n.cfg.Streams.Transport
		}
		return rtsp.Config{ID: cam.ID, URL: url.Reveal(), Transport: tr,
			BackoffMin: n.cfg.Streams.ReconnectMin.D(), BackoffMax: n.cfg.Streams.ReconnectMax.D(),
			ReadTimeout: n.cfg.Streams.ReadTimeout.D()}
	}
	s, err := n.cameras.Add(session(cam.URL))
	if err != nil {
		return err
	}
	if n.pipe != nil && cam.Analyse != "none" {
		o := analyseOptions(n.cfg, cam)
		o.Lease = epoch
		analysed := s.Stream()
		if cam.DetectURL != "" {
			// The sub-stream is analysed; shots come from the main stream, which is recorded.
			sub, err := n.detects.Add(session(cam.DetectURL))
			if err != nil {
				n.cameras.Remove(cam.ID)
				return err
			}
			analysed, o.Main = sub.Stream(), s.Stream()
		}
		if err := n.pipe.AddCamera(cam.ID, analysed, o); err != nil {
			return err
		}
	}
	if n.fleet != nil {
		var recordMasks privacy.Masks
		if cam.MaskRecording {
			recordMasks = cam.Masks
		}
		n.fleet.Record(cam.ID, s.Stream(), epoch, recordMasks)
	}
	return nil
}

// analysis is what the pipeline did with a camera's frames; nil when it does not analyse it.
func (n *node) analysis(camera string) *cameras.Analysis {
	if n.pipe == nil {
		return nil
	}
	st, ok := n.pipe.Stats(camera)
	if !ok {
		return nil
	}
	return cameras.NewAnalysis(st.Sampled, st.Gated, st.Still, st.Offered, st.Dropped)
}
