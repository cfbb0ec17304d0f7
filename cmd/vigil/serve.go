package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/api"
	"github.com/vigil-oss/vigil/dispatch"
	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/footage"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

type serveFlags struct {
	config  string
	cameras stringList
	http    string
	data    string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.registerStore(fs)
	fs.Var(&f.cameras, "camera", "RTSP URL of a camera to pull (repeatable)")
	fs.StringVar(&f.http, "http", "", "API and /metrics listen address (default 127.0.0.1:8080)")
}

// registerStore registers what finds the database: --config and --data (the tools' flags).
func (f *serveFlags) registerStore(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", os.Getenv("VIGIL_CONFIG"), "YAML config file (env VIGIL_CONFIG)")
	fs.StringVar(&f.data, "data", "", "data directory (default $VIGIL_DATA, else ./data)")
}

func (f *serveFlags) load() (config.Config, error) {
	cfg, err := config.Load(f.config, nil)
	if err != nil {
		return cfg, err
	}
	cfg.AddCameras(f.cameras)
	if f.http != "" {
		cfg.HTTP.Addr = f.http
	}
	if f.data != "" {
		if cfg.Pipeline.Gallery == filepath.Join(cfg.Data, "gallery.json") { // the derived default
			cfg.Pipeline.Gallery = filepath.Join(f.data, "gallery.json")
		}
		cfg.Data = f.data
	}
	return cfg, cfg.Validate()
}

// parseServeConfig parses serve's flags (serve and migrate share them) and loads the config.
func parseServeConfig(name string, args []string) (config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var f serveFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	return f.load()
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseServeConfig("serve", args)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	return serve(ctx, cfg, log, nil)
}

// serve runs the node until ctx ends. ready, when not nil, receives the API address once listening.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(addr string)) error {
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	defer ln.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b, err := bus.Open(ctx, bus.Config{URL: cfg.Bus.URL.Reveal(), StoreDir: filepath.Join(cfg.Data, "nats")}, log)
	if err != nil {
		return err
	}
	// The bus is the last sink: closed after everything that publishes to it has stopped.
	defer b.Close()

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close() // after the writer and the API, which use it
	storeCtx, storeCancel := context.WithCancel(context.Background())
	defer storeCancel()
	var writerDone chan struct{}
	if st.events != nil {
		w := events.NewWriter(st.events, b.JetStream(), st.blobs, events.WriterOptions{Stream: bus.Stream}, reg, log)
		writerDone = make(chan struct{})
		go func() {
			defer close(writerDone)
			if err := w.Run(storeCtx); err != nil {
				log.Error("event store writer stopped", "err", err)
			}
		}()
		go st.maintain(storeCtx, cfg, log)
	}

	var pl *pipeline.Pipeline
	var gallery *pipeline.Gallery
	pipeCtx, pipeCancel := context.WithCancel(context.Background())
	defer pipeCancel()
	if cfg.Pipeline.Enabled {
		if pl, gallery, err = newPipeline(cfg, b, reg, log); err != nil {
			return err
		}
		pl.Start(pipeCtx)
	}

	startPprof(log)
	pool := rtsp.NewPool(log)
	if cfg.Live.Enabled {
		// Every camera keeps its current GOP, so a live view starts on it at once (≤ 300 frames,
		// 4 MB: ~375 KB for a 2 s GOP at 1.5 Mb/s).
		pool.KeepGOP(300, 4<<20)
	}
	reg.MustRegister(rtsp.NewCollector(pool))
	var recWG sync.WaitGroup // recorders: they end with their camera's stream
	recorders := map[string]*footage.Recorder{}
	for _, cam := range cfg.Cameras {
		tr := cam.Transport
		if tr == "" {
			tr = cfg.Streams.Transport
		}
		s, err := pool.Add(rtsp.Config{
			ID: cam.ID, URL: cam.URL.Reveal(), Transport: tr,
			BackoffMin: cfg.Streams.ReconnectMin.D(), BackoffMax: cfg.Streams.ReconnectMax.D(),
			ReadTimeout: cfg.Streams.ReadTimeout.D(),
		})
		if err == nil && pl != nil && cam.Analyse != "none" {
			err = pl.AddCamera(cam.ID, s.Stream(), analyseOptions(cfg, cam))
		}
		if err == nil && st.events != nil && cfg.Footage.Enabled {
			fo := cfg.Footage
			rec := footage.NewRecorder(cam.ID, s.Stream(), st.blobs, footage.PGIndex{Pool: st.pool},
				footage.Options{SegmentLength: fo.SegmentLength.D(), WorkDir: filepath.Join(cfg.Data, "recording"),
					EventsOnly: fo.Mode == "events", PreRoll: fo.PreRoll.D(), PostRoll: fo.PostRoll.D()}, log)
			recorders[cam.ID] = rec
			recWG.Add(1)
			go func() { defer recWG.Done(); rec.Run(storeCtx) }()
		}
		if err != nil {
			pool.Close()
			return err
		}
	}
	if cfg.Footage.Mode == "events" && len(recorders) > 0 {
		// Events mark the footage to keep around them.
		stopMarks, err := b.Subscribe(event.SubjectPrefix+".>", func(_ string, data []byte) {
			e, err := event.Unpack(data)
			if err == nil {
				if rec := recorders[e.Camera]; rec != nil {
					rec.Mark(e.First)
					rec.Mark(e.Time)
				}
			}
		})
		if err != nil {
			pool.Close()
			return err
		}
		defer stopMarks()
	}
	deps := api.Deps{Cameras: pool, Events: b, Registry: reg, CameraMap: map[string][2]float64{}}
	for _, cam := range cfg.Cameras {
		if cam.Map != nil {
			deps.CameraMap[cam.ID] = *cam.Map
		}
	}
	if st.events != nil {
		deps.Store, deps.Blobs, deps.Exports = st.events, st.blobs, st.blobs
		deps.Footage = clipper{st}
		si, stopSearch, err := startSearch(storeCtx, st.events, b, cfg.Database.RetentionDays, log)
		if err != nil {
			pool.Close()
			return err
		}
		defer stopSearch()
		deps.Faces, deps.Plates, deps.Embeddings, deps.PlateEvents = si.faces, si.plates, st.events, st.events
		deps.Eraser = eraser{st: st, faces: si.faces}
		if dir, err := models.Dir(cfg.Models.Dir); err == nil {
			fe := &faceEmbedder{dir: dir}
			defer fe.Close()
			deps.Embedder, deps.DoorFaces = fe, fe
		} else {
			log.Warn("face search by photo is off: no models", "err", err)
		}
		trail := audit.New(st.pool, auditAnchor(cfg))
		deps.Auth, deps.Audit = auth.NewPrincipals(st.pool, 0), trail
		deps.Dispatch = dispatch.New(st.pool, trail)
		if deps.Access, err = access.NewEngine(ctx, st.pool, trail); err != nil {
			pool.Close()
			return err
		}
		go deps.Access.Watch(storeCtx, log)
		if m := cfg.Access.MQTT; m.URL != "" {
			stopMQTT, err := access.StartMQTT(storeCtx, deps.Access, access.MQTTConfig{URL: m.URL, Topic: m.Topic,
				Username: m.Username, Password: m.Password.Reveal()}, log)
			if err != nil {
				pool.Close()
				return err
			}
			defer stopMQTT()
		}
		stopUnlock, err := autoUnlock(storeCtx, deps.Access, pl, cfg.Pipeline.DoorPriority, gallery, b, log)
		if err != nil {
			pool.Close()
			return err
		}
		defer stopUnlock()
	} else {
		log.Warn("no database: the API is open to anyone who can reach it (bearer tokens need database.enabled)")
	}
	if cfg.Live.Enabled {
		deps.Live = startLive(cfg.Live, pool, reg, log)
		if deps.Live != nil {
			defer deps.Live.Close()
		}
	}
	srv, err := api.New(deps, log)
	if err != nil {
		pool.Close()
		return err
	}
	log.Info("vigil serving", "http", ln.Addr().String(), "cameras", len(cfg.Cameras), "pipeline", pl != nil)
	if ready != nil {
		ready(ln.Addr().String())
	}
	err = srv.Run(ctx, ln)
	// Shutdown order, producers before the sinks they write to:
	//  1. the API has stopped taking requests (Run returned after draining);
	//  2. the cameras stop and close their streams, so analysers see the end of their input;
	//  3. the pipeline publishes the passages in progress and stops its workers;
	//  4. the event store's writer stops: what it has not stored stays on the bus (durable,
	//     unacknowledged) and is stored at the next start;
	//  5. the bus closes, then the database pool and the managed cluster (deferred above).
	pool.Close()
	recWG.Wait() // recorders store the segment in progress when their stream closes
	if pl != nil {
		pipeCancel()
		pl.Wait()
	}
	if writerDone != nil {
		time.Sleep(300 * time.Millisecond) // let the writer take the last events published
		storeCancel()
		<-writerDone
	}
	log.Info("vigil stopped")
	return err
}

func analyseOptions(cfg config.Config, cam config.Camera) pipeline.Options {
	o := pipeline.Options{FPS: cfg.Pipeline.FPS, KeyframesOnly: cfg.Pipeline.KeyframesOnly, Motion: cfg.Pipeline.Motion}
	if cam.FPS > 0 {
		o.FPS = cam.FPS
	}
	switch cam.Analyse {
	case "faces":
		o.Faces = true
	case "plates":
		o.Plates = true
	default:
		o.Faces, o.Plates = true, true
	}
	return o
}

// newPipeline loads the models (one set per worker), the gallery and the pools.
func newPipeline(cfg config.Config, b *bus.Bus, reg *prometheus.Registry, log *slog.Logger) (*pipeline.Pipeline, *pipeline.Gallery, error) {
	dir, err := models.Dir(cfg.Models.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: %w (or set pipeline.enabled: false)", err)
	}
	g := pipeline.NewGallery(pipeline.MatchOptions{Threshold: float32(cfg.Pipeline.MatchThreshold)})
	if err := g.Load(cfg.Pipeline.Gallery); err != nil {
		return nil, nil, err
	}
	m := pipeline.NewMetrics(reg)
	pc := cfg.Pipeline
	dnn.SetThreads(pc.OpenCVThreads)
	var faces, plates *pipeline.Pool
	if pc.FaceWorkers > 0 {
		faces, err = pipeline.NewPool(pipeline.KindFace, pc.FaceWorkers, pc.Queue, func() (pipeline.Recognizer, error) {
			f, err := dnn.NewFaces(dir, dnn.DetectorOptions{})
			return &pipeline.FaceRecognizer{Faces: f}, err
		}, m, log)
		if err != nil {
			return nil, nil, err
		}
	}
	if pc.PlateWorkers > 0 {
		plates, err = pipeline.NewPool(pipeline.KindPlate, pc.PlateWorkers, pc.Queue, func() (pipeline.Recognizer, error) {
			p, err := dnn.NewPlates(dir)
			return &pipeline.PlateRecognizer{Plates: p}, err
		}, m, log)
		if err != nil {
			return nil, nil, err
		}
	}
	log.Info("pipeline ready", "people", len(g.People()), "gallery", cfg.Pipeline.Gallery, "face_workers", pc.FaceWorkers, "plate_workers", pc.PlateWorkers)
	return pipeline.New(pipeline.Config{Faces: faces, Plates: plates, Gallery: g, Publisher: pipeline.BusPublisher{Bus: b}, Metrics: m, Log: log}), g, nil
}

// clipper adapts the footage package to the API.
type clipper struct{ st *storage }

func (c clipper) Clip(ctx context.Context, camera string, from, to time.Time) ([]byte, []string, error) {
	b, skipped, err := footage.Clip(ctx, footage.PGIndex{Pool: c.st.pool}, c.st.blobs, camera, from, to)
	if errors.Is(err, footage.ErrNoFootage) {
		return nil, skipped, api.ErrNoFootage
	}
	return b, skipped, err
}
