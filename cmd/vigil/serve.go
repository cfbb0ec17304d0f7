package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigil-oss/vigil/api"
	"github.com/vigil-oss/vigil/internal/config"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

type serveFlags struct {
	config  string
	cameras stringList
	http    string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", os.Getenv("VIGIL_CONFIG"), "YAML config file (env VIGIL_CONFIG)")
	fs.Var(&f.cameras, "camera", "RTSP URL of a camera to pull (repeatable)")
	fs.StringVar(&f.http, "http", "", "API and /metrics listen address (default 127.0.0.1:8080)")
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
	return cfg, cfg.Validate()
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.load()
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
	pool := rtsp.NewPool(log)
	for _, cam := range cfg.Cameras {
		tr := cam.Transport
		if tr == "" {
			tr = cfg.Streams.Transport
		}
		if _, err := pool.Add(rtsp.Config{
			ID: cam.ID, URL: cam.URL.Reveal(), Transport: tr,
			BackoffMin: cfg.Streams.ReconnectMin.D(), BackoffMax: cfg.Streams.ReconnectMax.D(),
			ReadTimeout: cfg.Streams.ReadTimeout.D(),
		}); err != nil {
			pool.Close()
			ln.Close()
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		rtsp.NewCollector(pool))
	srv := api.New(pool, reg, log)
	log.Info("vigil serving", "http", ln.Addr().String(), "cameras", len(cfg.Cameras))
	if ready != nil {
		ready(ln.Addr().String())
	}
	err = srv.Run(ctx, ln)
	// Shutdown order: the API has stopped taking requests (Run returned after draining), so no
	// handler reads camera state any more; then the cameras, the producers, stop and close their
	// streams so every reader sees the end. Sinks added later (pipeline, recorder, bus) must be
	// closed after the pool, never before, so nothing writes into a closed sink.
	pool.Close()
	log.Info("vigil stopped")
	return err
}
