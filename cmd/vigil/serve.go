package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers/dnn"
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
		cfg.SetData(f.data)
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

func analyseOptions(cfg config.Config, cam config.Camera) pipeline.Options {
	o := pipeline.Options{FPS: cfg.Pipeline.FPS, KeyframesOnly: cfg.Pipeline.KeyframesOnly, Motion: cfg.Pipeline.Motion}
	if cam.FPS > 0 {
		o.FPS = cam.FPS
	}
	o.IdleFPS = cam.IdleFPS
	o.Masks = cam.Masks
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
// gate says which cameras open barriers: only their pictures with no plate get the reader's
// closer second look (nil: none).
func newPipeline(cfg config.Config, b *bus.Bus, reg *prometheus.Registry, log *slog.Logger, gate func(camera string) bool) (*pipeline.Pipeline, *pipeline.Gallery, error) {
	dir, err := models.Dir(cfg.Models.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: %w (or set pipeline.enabled: false)", err)
	}
	sp := cfg.Pipeline.FaceSpace()
	g := pipeline.NewGallery(pipeline.MatchOptions{Space: sp, Threshold: float32(cfg.Pipeline.MatchThreshold)})
	if err := g.Load(cfg.Pipeline.Gallery); err != nil {
		return nil, nil, err
	}
	m := pipeline.NewMetrics(reg)
	pc := cfg.Pipeline
	dnn.SetThreads(pc.OpenCVThreads)
	rt, note, err := dnn.Configure(pc.ONNXRuntime)
	if err != nil {
		return nil, nil, err
	}
	log.Info("face networks", "runtime", rt.String(), "note", note)
	var faces, plates *pipeline.Pool
	if pc.FaceWorkers > 0 {
		faces, err = pipeline.NewPool(pipeline.KindFace, pc.FaceWorkers, pc.Queue, func() (pipeline.Recognizer, error) {
			f, err := dnn.NewFacesIn(dir, sp, dnn.DetectorOptions{})
			return &pipeline.FaceRecognizer{Faces: f}, err
		}, m, log)
		if err != nil {
			return nil, nil, err
		}
	}
	if pc.PlateWorkers > 0 {
		plates, err = pipeline.NewPool(pipeline.KindPlate, pc.PlateWorkers, pc.Queue, func() (pipeline.Recognizer, error) {
			p, err := dnn.NewPlates(dir)
			return &pipeline.PlateRecognizer{Plates: p, Closer: gate}, err
		}, m, log)
		if err != nil {
			return nil, nil, err
		}
	}
	log.Info("pipeline ready", "people", len(g.People()), "gallery", cfg.Pipeline.Gallery, "face_workers", pc.FaceWorkers, "plate_workers", pc.PlateWorkers)
	return pipeline.New(pipeline.Config{Faces: faces, Plates: plates, Gallery: g, Publisher: pipeline.BusPublisher{Bus: b}, Metrics: m, Log: log,
		DoorMinFace: pc.DoorMinFace, CPUSlots: pc.CPUSlots}), g, nil
}
