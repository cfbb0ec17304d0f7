// Package live relays cameras to browsers over WebRTC (WHEP). Each camera is read once and
// packetized once into RTP, whatever the number of viewers; every viewer has its own bounded
// queue and writer, so a viewer that falls behind loses frames up to the next key frame and never
// slows the others. The current GOP is kept, so a new viewer starts on its key frame at once
// instead of waiting for the camera's next one: the cached frames are sent as a burst with
// timestamps squeezed together, then the live frames follow at their own pace.
//
// Files: live.go (the relay, its configuration and lifetime), sessions.go (answering offers,
// ending sessions), camera.go (one reader per camera), viewer.go (each viewer's queue, writer
// and NACKs), admission.go (refusing and shedding under overload), sockets.go, batch.go (the
// optional sendmmsg writer), metrics.go, log.go (pion's logs through slog).
//
// Lock order. A goroutine that holds more than one lock takes them in this order, never the
// other way round:
//
//	Relay.mu → camSession.mu
//
// (Relay.Viewers and Relay.maybeStop hold the relay's while they read a camera session's.)
// viewer.histMu and batchConn.mu are leaves: nothing else is taken while they are held.
// camSession.mu is held while a frame is offered to every viewer (viewer.offer only does
// non-blocking sends on the viewer's queue), so no code under it may take Relay.mu: ending a
// session (Relay.end) first marks it closing, then takes Relay.mu and camSession.mu one after
// the other, never nested.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/streams"
)

// Config configures the relay.
type Config struct {
	// UDPAddr is the one UDP address every WebRTC session shares (ICE UDP mux). Default :8189;
	// "127.0.0.1:0" in tests.
	UDPAddr string
	// ICEServers are offered to the server's ICE agent and, in Link headers, to browsers.
	ICEServers []webrtc.ICEServer
	// PublicIPs are advertised as host candidates instead of the interfaces' addresses (behind
	// a 1:1 NAT).
	PublicIPs []string
	// MaxViewers bounds the sessions of the whole node. Default 1000.
	MaxViewers int
	// MaxPerOwner bounds one principal's sessions (a wall of 16 cameras on two screens). Default 32.
	MaxPerOwner int
	// ViewerQueue is each viewer's queue in frames; a viewer this far behind loses frames to the
	// next key frame. Default 60.
	ViewerQueue int
	// BatchWrites gathers every session's packets into sendmmsg calls made by one writer
	// (batchConn) instead of each viewer's writer sending its own. It is cheaper per packet at
	// moderate load, but the one writer becomes the bottleneck: in the live bench on one core it
	// held 500–600 viewers where the viewers' own writers held 600–700.
	BatchWrites bool
	// NoShed keeps every admitted viewer when the node is overloaded (by default the newest are
	// shed until the rest recover; see watchLoad).
	NoShed bool
	// GOPCacheFrames bounds the cached GOP; a longer GOP is not cached (viewers then wait for the
	// camera's next key frame). Default 300.
	GOPCacheFrames int
}

func (c *Config) defaults() {
	if c.UDPAddr == "" {
		c.UDPAddr = ":8189"
	}
	if c.MaxViewers == 0 {
		c.MaxViewers = 1000
	}
	if c.MaxPerOwner == 0 {
		c.MaxPerOwner = 32
	}
	if c.ViewerQueue == 0 {
		c.ViewerQueue = 60
	}
	if c.GOPCacheFrames == 0 {
		c.GOPCacheFrames = 300
	}
}

// Source finds a camera's stream.
type Source func(camera string) (*streams.Stream, bool)

// Errors a WHEP request can get; the API maps them to status codes.
var (
	ErrNoCamera    = errors.New("live: no such camera")
	ErrNoVideo     = errors.New("live: the camera has sent no video yet")
	ErrCodec       = errors.New("live: codec not supported by this browser")
	ErrBadOffer    = errors.New("live: bad SDP offer")
	ErrTooMany     = errors.New("live: too many viewers on this node")
	ErrOwnerLimit  = errors.New("live: this principal has too many live views open; close some")
	ErrBusy        = errors.New("live: this node is at its live-view capacity: its viewers are losing frames")
	ErrNoSession   = errors.New("live: no such session")
	ErrPeerGone    = errors.New("live: the viewer's connection failed while its answer was made")
	errRelayClosed = errors.New("live: relay closed")
)

// Relay serves WHEP sessions.
type Relay struct {
	cfg    Config
	src    Source
	log    *slog.Logger
	api    *webrtc.API
	socks  []net.PacketConn // the UDP sockets the sessions share: one, or one per interface address
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	cams     map[string]*camSession
	sessions map[string]*viewer
	pending  int            // offers being answered: their slots are taken
	owners   map[string]int // sessions and pending offers by owner
	wg       sync.WaitGroup

	busyUntil atomic.Int64  // unix ns: new viewers are refused until then (watchLoad)
	shed      func(*viewer) // ends a viewer shed by watchLoad (r.end; tests watch it)

	viewersGauge                               *prometheus.GaugeVec
	sessionsCtr                                *prometheus.CounterVec
	dropped                                    *prometheus.CounterVec
	firstFrame                                 prometheus.Histogram
	nacks                                      *prometheus.CounterVec
	nackGone, nackOver, nackRepeat, nackResent prometheus.Counter
}

// New starts a relay listening on cfg.UDPAddr. reg may be nil.
func New(cfg Config, src Source, reg prometheus.Registerer, log *slog.Logger) (*Relay, error) {
	cfg.defaults()
	se := webrtc.SettingEngine{LoggerFactory: pionLogs{log.With("component", "live")}}
	socks, mux, err := listenUDP(cfg, se.LoggerFactory)
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, c := range socks {
			c.Close()
		}
	}
	se.SetICEUDPMux(mux)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		closeAll()
		return nil, err
	}
	ir := &interceptor.Registry{}
	// Sender reports (browsers sync and measure with them). NACKs are answered by the relay
	// itself (viewer.nack): from the packets it already shares, without copies, and within a
	// budget, so that an overloaded viewer's losses cannot turn into a storm of resends. No
	// congestion control: the camera's bitrate is what it is, a relay cannot change it.
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		closeAll()
		return nil, err
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{External: cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace}); err != nil {
			closeAll()
			return nil, fmt.Errorf("live: public_ips: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{cfg: cfg, src: src, log: log.With("component", "live"), socks: socks, ctx: ctx, cancel: cancel,
		api:  webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)),
		cams: map[string]*camSession{}, sessions: map[string]*viewer{}, owners: map[string]int{},
	}
	r.initMetrics()
	r.shed = func(v *viewer) { r.end(v, "shed") }
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.watchLoad() }()
	if reg != nil {
		for _, c := range []prometheus.Collector{r.viewersGauge, r.sessionsCtr, r.dropped, r.firstFrame, r.nacks} {
			if err := reg.Register(c); err != nil {
				closeAll()
				cancel()
				return nil, err
			}
		}
	}
	return r, nil
}

// Addr is the UDP address the sessions share.
func (r *Relay) Addr() net.Addr { return r.socks[0].LocalAddr() }

// Close ends every session and stops reading the cameras.
func (r *Relay) Close() {
	r.cancel()
	r.mu.Lock()
	vs := make([]*viewer, 0, len(r.sessions))
	for _, v := range r.sessions {
		vs = append(vs, v)
	}
	r.mu.Unlock()
	// In parallel: each close waits on its DTLS goodbye, and hundreds in a row held shutdown for
	// tens of seconds.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, v := range vs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.end(v, "closed")
		})
	}
	wg.Wait()
	r.wg.Wait()
	for _, c := range r.socks {
		c.Close()
	}
}

// Viewers is how many sessions are open (on one camera, or all when camera is "").
func (r *Relay) Viewers(camera string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if camera == "" {
		return len(r.sessions)
	}
	if c := r.cams[camera]; c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.viewers)
	}
	return 0
}

// ICELinks are the WHEP Link headers that tell a browser the configured STUN/TURN servers.
func (r *Relay) ICELinks() []string {
	var out []string
	for _, s := range r.cfg.ICEServers {
		for _, u := range s.URLs {
			l := fmt.Sprintf(`<%s>; rel="ice-server"`, u)
			if s.Username != "" {
				l += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, s.Username, fmt.Sprint(s.Credential))
			}
			out = append(out, l)
		}
	}
	return out
}
