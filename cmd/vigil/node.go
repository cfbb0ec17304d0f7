package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/api"
	liveview "github.com/vigil-oss/vigil/api/live"
	"github.com/vigil-oss/vigil/cameras"
	"github.com/vigil-oss/vigil/cluster"
	"github.com/vigil-oss/vigil/dispatch"
	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/lifecycle"
	"github.com/vigil-oss/vigil/internal/core/quota"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/footage"
	"github.com/vigil-oss/vigil/storage/search"
	"github.com/vigil-oss/vigil/storage/strangers"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// node is one vigil serve process: its components and what they share. Each component is
// started by the lifecycle group in the order of components() and stopped in reverse.
type node struct {
	cfg   config.Config
	log   *slog.Logger
	reg   *prometheus.Registry
	group *lifecycle.Group

	ln      net.Listener
	httpSrv *http.Server
	handler atomic.Pointer[http.Handler] // the API once it is up; before that, health and readiness only
	reqCtx  context.Context              // requests' base context: ends when the API stops
	reqStop context.CancelFunc

	bus      *bus.Bus
	st       *storage
	writer   *events.Writer
	trail    *audit.Chain
	auth     *auth.Principals
	dispatch *dispatch.Service
	// strangers clusters unmatched faces (strangerService makes it once).
	strangers     *strangers.Service
	strangersOnce sync.Once
	engine        *access.Engine
	pipe          *pipeline.Pipeline
	gallery       *pipeline.Gallery
	search        *search.Indexes
	photos        struct{ doors, searches *pipeline.Photos }
	fleet         *footage.Fleet
	cameras       *rtsp.Pool
	detects       *rtsp.Pool        // sub-streams of the cameras that have one (detect_url): analysed, not recorded
	registry      *cameras.Registry // nil without a database
	running       running
	members       *cluster.Members
	nonces        *cluster.Nonces
	placer        placement
	relay         *liveview.Relay
	api           *api.Server
}

// background runs goroutines that a component owns until its Stop.
type background struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (b *background) start(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	prev := b.cancel
	b.cancel = func() {
		if prev != nil {
			prev()
		}
		cancel()
	}
	b.wg.Go(func() { fn(ctx) })
}

// every runs fn each d until the component stops.
func (b *background) every(d time.Duration, fn func(ctx context.Context)) {
	b.everyOr(d, nil, fn)
}

// everyOr is every, and also whenever kick delivers.
func (b *background) everyOr(d time.Duration, kick <-chan struct{}, fn func(ctx context.Context)) {
	b.start(func(ctx context.Context) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-kick:
			}
			fn(ctx)
		}
	})
}

func (b *background) stop() {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
}

// serve runs a node until ctx ends. ready, when not nil, receives the API address once every
// component has started.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(addr string)) error {
	cfg.FillDerived()
	n := &node{cfg: cfg, log: log, reg: prometheus.NewRegistry(), group: lifecycle.New(log)}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range n.components() {
		n.group.Add(c)
	}
	if err := n.group.Start(ctx); err != nil {
		if errors.Is(err, lifecycle.ErrStopped) {
			return nil // asked to stop while starting
		}
		return err
	}
	log.Info("vigil serving", "http", n.ln.Addr().String(), "cameras", len(cfg.Cameras), "pipeline", n.pipe != nil)
	if ready != nil {
		ready(n.ln.Addr().String())
	}
	<-ctx.Done()
	n.group.Stop()
	log.Info("vigil stopped")
	return nil
}

// components lists the node's parts in start order. The reverse is the stop order, producers
// before the sinks they write to:
//  1. the API drains its requests and stops taking new ones, the live relay ends its sessions;
//  2. the cameras stop and close their streams, so recorders store their segment in progress
//     and analysers see the end of their input;
//  3. the pipeline publishes the passages in progress and stops its workers;
//  4. the event store's writer drains: everything published is stored before it stops (what
//     it cannot store in time stays on the bus, durable and unacknowledged, for the next start);
//  5. the database pool and the managed cluster close, then the bus, then the listener.
func (n *node) components() []lifecycle.Component {
	cs := []lifecycle.Component{n.httpComponent(), n.busComponent()}
	if n.cfg.Database.Enabled {
		cs = append(cs, n.databaseComponent(), n.writerComponent(), n.maintenanceComponent(), n.accessComponent())
		if n.cfg.Access.MQTT.URL != "" && n.cfg.Cluster.Has(config.RoleDoors) {
			cs = append(cs, n.mqttComponent())
		}
		if n.cfg.Cluster.Has(config.RoleDoors) {
			cs = append(cs, n.sensorsComponent())
		}
		if n.cfg.Audit.CheckpointKey != "" {
			cs = append(cs, n.checkpointsComponent())
		}
	}
	cams := n.cfg.Cluster.Has(config.RoleCameras) // cluster.roles: see config.Cluster
	if n.cfg.Pipeline.Enabled && cams {
		cs = append(cs, n.pipelineComponent())
	}
	if n.cfg.Database.Enabled {
		if n.cfg.Cluster.Has(config.RoleSearch) {
			cs = append(cs, n.searchComponent())
			if n.cfg.Strangers.Enabled {
				cs = append(cs, n.strangersComponent())
			}
		}
		if cams {
			cs = append(cs, n.autoUnlockComponent())
		}
		cs = append(cs, n.photosComponent())
		if n.cfg.Footage.Enabled && cams {
			cs = append(cs, n.recordersComponent())
		}
	}
	cs = append(cs, n.clusterComponent(), n.camerasComponent())
	if cams {
		cs = append(cs, n.watchdogComponent())
		cs = append(cs, n.handoverComponent())
		if n.cfg.Live.Enabled {
			cs = append(cs, n.liveComponent())
		}
	}
	return append(cs, n.apiComponent())
}

// httpComponent binds the listener first, so that /healthz and /readyz answer while the rest
// starts (everything else is 503 until the API is up), and a port already taken fails at once.
func (n *node) httpComponent() lifecycle.Component {
	return lifecycle.Component{Name: "http", Start: func(context.Context) error {
		if err := makeDataDir(n.cfg.Data); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", n.cfg.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("http.addr %s: %w", n.cfg.HTTP.Addr, err)
		}
		n.ln = ln
		ln = limitListener(ln, n.cfg.HTTP.MaxConnections, n.cfg.HTTP.MaxConnectionsPerAddress)
		n.reqCtx, n.reqStop = context.WithCancel(context.Background())
		starting := http.NewServeMux()
		starting.HandleFunc("GET /healthz", api.Healthz)
		ready := api.ReadyHandler(n.group.NotReady)
		starting.HandleFunc("GET /readyz", ready)
		starting.HandleFunc("/", ready)
		var h http.Handler = starting
		n.handler.Store(&h)
		// Requests inherit reqCtx, so live streams end when the API stops instead of holding
		// Shutdown until its deadline.
		// Deadlines bound what a slow or idle client can hold: headers within 10 s, a request
		// within 60 s, an answer written within 60 s, an idle keep-alive 2 min. Handlers that hold
		// a request open on purpose (event streams, long polls, downloads) extend their own.
		n.httpSrv = &http.Server{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*n.handler.Load()).ServeHTTP(w, r) }),
			BaseContext: func(net.Listener) context.Context { return n.reqCtx }}
		go func() {
			if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("http server", "err", err)
			}
		}()
		startPprof(n.log)
		return nil
	}, Stop: func() {
		n.reqStop()
		_ = n.httpSrv.Close()
	}}
}

func (n *node) busComponent() lifecycle.Component {
	return lifecycle.Component{Name: "bus", Start: func(ctx context.Context) (err error) {
		n.bus, err = bus.Open(ctx, bus.Config{URL: n.cfg.Bus.URL.Reveal(), StoreDir: filepath.Join(n.cfg.Data, "nats"), Replicas: n.cfg.Bus.Replicas}, n.log)
		return err
	}, Stop: func() { n.bus.Close() }, Ready: func() error { return n.bus.Ready() }}
}

// databaseComponent connects to PostgreSQL (or starts the managed cluster), migrates, and opens
// the blob store.
func (n *node) databaseComponent() lifecycle.Component {
	return lifecycle.Component{Name: "database", Start: func(ctx context.Context) (err error) {
		n.st, err = openStore(ctx, n.cfg, n.log)
		return err
	}, Stop: func() { n.st.Close() }, Ready: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := n.st.pool.Ping(ctx); err != nil {
			return fmt.Errorf("not answering: %w", err)
		}
		return nil
	}}
}

func (n *node) writerComponent() lifecycle.Component {
	var bg background
	return lifecycle.Component{Name: "event-writer", Start: func(context.Context) error {
		n.writer = events.NewWriter(n.st.events, n.bus.JetStream(), n.st.blobs, events.WriterOptions{Stream: bus.Stream}, n.reg, n.log)
		bg.start(func(ctx context.Context) {
			if err := n.writer.Run(ctx); err != nil {
				n.log.Error("event store writer stopped", "err", err)
			}
		})
		return nil
	}, Stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.writer.Drain(ctx); err != nil {
			n.log.Warn("event store writer: stopping before the bus was drained; the rest is stored at the next start", "err", err)
		}
		bg.stop()
	}}
}

func (n *node) maintenanceComponent() lifecycle.Component {
	var bg background
	return lifecycle.Component{Name: "maintenance", Start: func(context.Context) error {
		bg.start(func(ctx context.Context) { n.st.maintain(ctx, n.cfg, n.log) })
		return nil
	}, Stop: bg.stop}
}

// accessComponent loads principals, the audit chain, dispatch and the door decision engine,
// which follows changes made by any process.
func (n *node) accessComponent() lifecycle.Component {
	var bg background
	return lifecycle.Component{Name: "access", Start: func(ctx context.Context) (err error) {
		n.trail = audit.New(n.st.pool, auditAnchor(n.cfg))
		n.auth = auth.NewPrincipals(n.st.pool, 0)
		n.dispatch = dispatch.New(n.st.pool, n.trail)
		secret, err := access.LoadSecret(n.cfg.Access.SecretFile)
		if err != nil {
			return fmt.Errorf("access.secret_file: %w", err)
		}
		if n.engine, err = access.NewEngine(ctx, n.st.pool, n.trail, secret); err != nil {
			return err
		}
		if err := n.engine.UseFaceSpace(ctx, n.cfg.Pipeline.FaceSpace()); err != nil {
			return err
		}
		bg.start(func(ctx context.Context) { n.engine.Watch(ctx, n.log) })
		bg.start(func(ctx context.Context) { n.engine.RunRefusals(ctx, n.log) })
		bg.start(func(ctx context.Context) { n.auth.Watch(ctx, n.log) })
		n.engine.OnAlarm(n.raiseAlarm)
		return nil
	}, Stop: bg.stop}
}

// checkpointsComponent signs the audit chain's head every audit.checkpoint_every with the key kept
// outside the database, and once more as the node stops.
func (n *node) checkpointsComponent() lifecycle.Component {
	var bg background
	var priv ed25519.PrivateKey
	sign := func(ctx context.Context) {
		if c, err := audit.SignHead(ctx, n.st.pool, priv); err != nil && !errors.Is(err, audit.ErrEmpty) {
			n.log.Error("audit checkpoint failed", "err", err)
		} else if err == nil {
			n.log.Info("audit checkpoint signed", "seq", c.Seq, "key", c.KeyID)
		}
	}
	return lifecycle.Component{Name: "audit-checkpoints", Start: func(context.Context) (err error) {
		if priv, err = audit.LoadKey(n.cfg.Audit.CheckpointKey); err != nil {
			return fmt.Errorf("audit.checkpoint_key: %w", err)
		}
		bg.every(n.cfg.Audit.CheckpointEvery.D(), sign)
		return nil
	}, Stop: func() {
		bg.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sign(ctx)
	}}
}

// subscription is a component that subscribes (to the bus, a broker): start returns the
// function that unsubscribes; the context its work runs with ends at Stop.
func subscription(name string, start func(ctx context.Context) (stop func(), err error)) lifecycle.Component {
	var cancel context.CancelFunc
	var stop func()
	return lifecycle.Component{Name: name, Start: func(context.Context) (err error) {
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		if stop, err = start(ctx); err != nil {
			cancel()
		}
		return err
	}, Stop: func() {
		stop()
		cancel()
	}}
}

// pipelineComponent loads the models (one set per worker), the gallery and the pools, and
// starts the workers. Door cameras' frames go first in the queues.
func (n *node) pipelineComponent() lifecycle.Component {
	var bg background
	return lifecycle.Component{Name: "pipeline", Start: func(context.Context) (err error) {
		if n.pipe, n.gallery, err = newPipeline(n.cfg, n.bus, n.reg, n.log, n.gateCamera); err != nil {
			return err
		}
		if n.engine != nil {
			n.gallery.FollowTemplates(n.engine)
			if n.cfg.Pipeline.DoorPriority {
				n.pipe.SetPriority(func(camera string) bool { // doors and barriers first
					return len(n.engine.DoorsWithCamera(camera)) > 0 || len(n.engine.GatesWithCamera(camera)) > 0
				})
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		bg.cancel = cancel
		n.pipe.Start(ctx)
		if n.st != nil && n.st.events != nil {
			var last, seq int64
			bg.every(verdictsEvery, func(ctx context.Context) {
				last = n.followVerdicts(ctx, last)
				seq = n.followEntries(ctx, seq)
			})
		}
		return nil
	}, Stop: func() {
		bg.stop()
		n.pipe.Wait() // passages in progress are published before the workers stop
	}}
}

func (n *node) searchComponent() lifecycle.Component {
	return lifecycle.Component{Name: "search", Start: func(context.Context) error {
		n.st.events.UseFaceSpace(n.cfg.Pipeline.FaceSpace())
		n.search = search.New(n.st.events, n.cfg.Pipeline.FaceSpace(), n.cfg.Database.RetentionDays, filepath.Join(n.cfg.Data, "faces"), n.log)
		return n.search.Start(n.bus)
	}, Stop: func() { n.search.Stop() }}
}

// photosComponent readies face reading for uploaded photos: one model set for door decisions
// and enrolment, another for investigators' searches, so that a search never queues ahead of a
// door. Models load on first use.
func (n *node) photosComponent() lifecycle.Component {
	return lifecycle.Component{Name: "photos", Start: func(context.Context) error {
		dir, err := models.Dir(n.cfg.Models.Dir)
		if err != nil {
			n.log.Warn("face search by photo and door face decisions are off: no models", "err", err)
			return nil
		}
		sp := n.cfg.Pipeline.FaceSpace()
		n.photos.doors, n.photos.searches = pipeline.NewPhotos(dir, sp), pipeline.NewPhotos(dir, sp)
		return nil
	}, Stop: func() {
		if n.photos.doors != nil {
			n.photos.doors.Close()
			n.photos.searches.Close()
		}
	}}
}

func (n *node) recordersComponent() lifecycle.Component {
	return lifecycle.Component{Name: "recorders", Start: func(context.Context) error {
		fo := n.cfg.Footage
		n.fleet = footage.NewFleet(n.st.blobs, footage.PGIndex{Pool: n.st.pool},
			footage.Options{SegmentLength: fo.SegmentLength.D(), WorkDir: filepath.Join(n.cfg.Data, "recording"),
				EventsOnly: fo.Mode == "events", PreRoll: fo.PreRoll.D(), PostRoll: fo.PostRoll.D()}, n.log)
		return n.fleet.FollowEvents(n.bus)
	}, Stop: func() { n.fleet.Stop(30 * time.Second) }}
}

func (n *node) liveComponent() lifecycle.Component {
	return lifecycle.Component{Name: "live", Start: func(context.Context) error {
		n.relay = startLive(n.cfg.Live, n.cameras, n.reg, n.log)
		return nil
	}, Stop: func() {
		if n.relay != nil {
			n.relay.Close()
		}
	}}
}

// apiComponent builds the API over what started before it and puts it behind the listener.
func (n *node) apiComponent() lifecycle.Component {
	return lifecycle.Component{Name: "api", Start: func(context.Context) (err error) {
		if n.api, err = api.New(n.apiDeps(), n.log); err != nil {
			return err
		}
		if n.auth != nil {
			n.auth.OnRevoke(n.api.Revoked)
		}
		h := n.api.Handler()
		n.handler.Store(&h)
		return nil
	}, Stop: func() {
		n.reqStop() // live streams end now
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.httpSrv.Shutdown(ctx)
		n.api.Close()
	}}
}

func (n *node) apiDeps() api.Deps {
	d := api.Deps{Cameras: n.cameras, Analysis: n.analysis, Events: n.bus, Registry: n.reg, CameraMap: map[string][2]float64{}, NotReady: n.group.NotReady,
		MetricsToken: n.cfg.HTTP.MetricsToken.Reveal(), Open: n.cfg.HTTP.OpenWithoutDatabase, TrustedProxies: n.cfg.HTTP.Proxies()}
	n.running.mu.Lock()
	for _, cam := range n.running.cams {
		if cam.Map != nil {
			d.CameraMap[cam.ID] = *cam.Map
		}
	}
	n.running.mu.Unlock()
	if n.registry != nil {
		d.CameraRegistry = n.registry
	}
	if n.members != nil {
		d.Cluster, d.SharedNonces, d.CameraOwner = n.members, n.nonces.Claim, n.cameraOwner
	}
	d.Roles = n.cfg.Cluster.Roles
	if n.relay != nil {
		d.Live = n.relay
	}
	if n.st == nil {
		if d.Open {
			n.log.Warn("no database: the API is open to anyone who can reach it (http.open_without_database)")
		} else {
			n.log.Warn("no database: the API refuses every call (it cannot check tokens); cameras, recording and live streams go on")
		}
		return d
	}
	d.Store, d.Blobs, d.Exports = n.st.events, n.st.blobs, n.st.blobs
	d.Footage = footage.Clipper{Index: footage.PGIndex{Pool: n.st.pool}, Blobs: n.st.blobs}
	d.Preview = footagePreview(footage.Clipper{Index: footage.PGIndex{Pool: n.st.pool}, Blobs: n.st.blobs})
	d.Embeddings, d.PlateEvents = n.st.events, n.st.events
	d.Strangers = n.strangerService()
	if n.search != nil { // a node without the search role passes searches to one that has it
		d.Faces, d.Plates = n.search.Faces, n.search.Plates
	}
	d.FaceSpace = n.cfg.Pipeline.FaceSpace()
	eraser := search.Eraser{Store: n.st.events, Blobs: n.st.blobs, Bus: n.bus, Peers: n.bus.Broadcast}
	if n.search != nil {
		eraser.Faces = n.search.Faces
	}
	d.Eraser = eraser
	if n.photos.doors != nil {
		d.Embedder, d.DoorFaces = n.photos.searches, n.photos.doors
	}
	d.Auth, d.Audit, d.Dispatch, d.Access, d.AuditPool = n.auth, n.trail, n.dispatch, n.engine, n.st.pool
	return d
}

// limitListener holds at most total connections at once, and at most perAddr from one address:
// past either, a new connection is closed at once (one host holding idle or slow connections
// cannot take the node's file descriptors, nor keep the doors' controllers out by filling them).
func limitListener(ln net.Listener, total, perAddr int) net.Listener {
	return &limitedListener{Listener: ln, total: total, perAddr: perAddr}
}

type limitedListener struct {
	net.Listener
	total, perAddr int
	byAddr         quota.PerKey // an IPv6 host by its /64, as throttling counts it
	mu             sync.Mutex
	open           int
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := c.RemoteAddr().String()
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			addr = quota.AddrKey(ap.Addr())
		}
		l.mu.Lock()
		ok := l.open < l.total && l.byAddr.Take(addr, l.perAddr)
		if ok {
			l.open++
		}
		l.mu.Unlock()
		if !ok {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() {
			l.byAddr.Give(addr)
			l.mu.Lock()
			l.open--
			l.mu.Unlock()
		}}, nil
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
