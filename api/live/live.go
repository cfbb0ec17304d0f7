// Package live relays cameras to browsers over WebRTC (WHEP). Each camera is read once and
// packetized once into RTP, whatever the number of viewers; every viewer has its own bounded
// queue and writer, so a viewer that falls behind loses frames up to the next key frame and never
// slows the others. The current GOP is kept, so a new viewer starts on its key frame at once
// instead of waiting for the camera's next one: the cached frames are sent as a burst with
// timestamps squeezed together, then the live frames follow at their own pace.
package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
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
	ErrBusy        = errors.New("live: this node is at its live-view capacity: its viewers are losing frames")
	ErrNoSession   = errors.New("live: no such session")
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
		cams: map[string]*camSession{}, sessions: map[string]*viewer{},
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

// maxLag is how long a live frame may wait in the relay before its viewer counts as suffering.
const maxLag = 200 * time.Millisecond

// shedAfter is how many seconds in a row the relay itself must be failing its viewers (more than
// a tenth of them with frames waiting over shedLag) before it sheds the newest ones: longer and
// worse than a crowd joining at once causes.
const (
	shedAfter = 5
	shedLag   = 500 * time.Millisecond
)

// shedCooldown is how long new viewers are refused after the relay shed some.
const shedCooldown = 30 * time.Second

// watchLoad is the relay's admission control and overload protection. Every second it looks at
// three signs that the node cannot carry more: its writers falling behind (more than 1% of the
// frames lost in the viewers' queues), and more than a tenth of the viewers suffering, either
// reporting over 5% of their packets lost in their last receiver report (the node's uplink or
// CPU is saturated, or their own network is poor) or their last frame having waited over maxLag
// in the relay (its CPU is). Any of them refuses new viewers (503) for the next 10 s, so that the
// viewers already watching keep their pictures instead of all of them degrading together.
//
// When the relay's own signs (its queues, or frames waiting over shedLag; not what viewers
// report, which a few poor networks could drive) persist for shedAfter seconds, refusing
// newcomers was not enough: the node sheds the newest twentieth of its viewers, again every
// shedAfter seconds while it lasts (ending sessions costs CPU too: shedding faster overshoots),
// and refuses newcomers for shedCooldown. The last admitted are the ones that tipped it over;
// those watching longest keep their pictures.
func (r *Relay) watchLoad() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastSent, lastDropped int64
	overloaded := 0
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		var sent, dropped int64
		suffering, veryLate, n := 0, 0, 0
		var all []*viewer
		r.mu.Lock()
		for _, v := range r.sessions {
			all = append(all, v)
			sent += v.sent.Load()
			dropped += v.dropped.Load()
			// Viewers in their first 5 s are left out: the GOP burst that starts them at once
			// may overflow their receive buffers, which says nothing about the node.
			if time.Since(v.offered) < 5*time.Second {
				continue
			}
			n++
			lag := time.Duration(v.lag.Load())
			if time.Since(time.Unix(0, v.lagAt.Load())) > 2*time.Second {
				lag = 0 // nothing written lately: the camera, not the relay, is quiet
			}
			if lag > shedLag {
				veryLate++
			}
			if lag > maxLag || v.lossFrac.Load() > 13 /* 5% */ {
				suffering++
			}
		}
		r.mu.Unlock()
		ds, dd := sent-lastSent, dropped-lastDropped
		lastSent, lastDropped = sent, dropped
		behind := ds >= 0 && dd > 0 && float64(dd) > 0.01*float64(ds+dd) // (negative: sessions ended)
		losing := n >= 10 && suffering*10 > n
		if behind || losing {
			if r.refuseUntil(time.Now().Add(10 * time.Second)) {
				r.log.Warn("live view at capacity: refusing new viewers for 10 s", "viewers", n, "queue_lost_frames", dd,
					"sent_frames", ds, "viewers_losing_or_late", suffering)
			}
		}
		if behind || (n >= 10 && veryLate*10 > n) {
			overloaded++
		} else {
			overloaded = 0
		}
		if overloaded >= shedAfter && !r.cfg.NoShed && len(all) > 0 {
			slices.SortFunc(all, func(a, b *viewer) int { return b.offered.Compare(a.offered) }) // newest first
			k := max(1, len(all)/20)
			r.log.Warn("live view overloaded: shedding the newest viewers", "shed", k, "viewers", len(all),
				"queue_lost_frames", dd, "viewers_late", veryLate)
			for _, v := range all[:k] {
				go r.shed(v)
			}
			r.refuseUntil(time.Now().Add(shedCooldown)) // no newcomers while it recovers
			overloaded = 0                              // the next shed only if it is still overloaded shedAfter seconds on
		}
	}
}

// refuseUntil makes the relay refuse new viewers until at least t, and reports whether it was
// accepting them until now. It only ever extends a refusal.
func (r *Relay) refuseUntil(t time.Time) (wasAccepting bool) {
	for {
		cur := r.busyUntil.Load()
		if cur >= t.UnixNano() {
			return false
		}
		if r.busyUntil.CompareAndSwap(cur, t.UnixNano()) {
			return cur < time.Now().UnixNano()
		}
	}
}

// listenUDP opens the sockets every session shares: the configured address, or, when its host
// is unspecified (":8189"), one socket per interface address on that port, so that each
// candidate's replies leave from the address the browser sent to (pion's mux on an
// unspecified address cannot promise that).
func listenUDP(cfg Config, lf logging.LoggerFactory) ([]net.PacketConn, ice.UDPMux, error) {
	host, port, err := net.SplitHostPort(cfg.UDPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("live: udp_addr %q: %w", cfg.UDPAddr, err)
	}
	var ips []string
	if ip := net.ParseIP(host); host != "" && !ip.IsUnspecified() {
		ips = []string{host}
	} else {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, nil, fmt.Errorf("live: listing interface addresses: %w", err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() && !n.IP.IsMulticast() {
				ips = append(ips, n.IP.String())
			}
		}
	}
	var socks []net.PacketConn
	var muxes []ice.UDPMux
	for _, ip := range ips {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, nil, fmt.Errorf("live: WebRTC UDP %s: %w", net.JoinHostPort(ip, port), err)
		}
		if uc, ok := c.(*net.UDPConn); ok { // room for bursts (key frames to many viewers at once)
			_ = uc.SetReadBuffer(4 << 20)
			_ = uc.SetWriteBuffer(4 << 20)
			if cfg.BatchWrites {
				c = newBatchConn(uc)
			}
		}
		socks = append(socks, c)
		muxes = append(muxes, webrtc.NewICEUDPMux(lf.NewLogger("ice"), c))
	}
	if len(socks) == 0 {
		return nil, nil, fmt.Errorf("live: no interface address to listen on for %s", cfg.UDPAddr)
	}
	if len(muxes) == 1 {
		return socks, muxes[0], nil
	}
	return socks, ice.NewMultiUDPMuxDefault(muxes...), nil
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

// Session is an answered WHEP offer.
type Session struct {
	ID     string
	Answer string // SDP
}

// Offer answers a browser's WHEP offer for a camera. The answer carries every ICE candidate
// (no trickle needed).
func (r *Relay) Offer(ctx context.Context, camera, offer string) (*Session, error) {
	t0 := time.Now()
	stream, ok := r.src(camera)
	if !ok {
		return nil, ErrNoCamera
	}
	if !strings.Contains(offer, "m=video") {
		return nil, fmt.Errorf("%w: it has no video section", ErrBadOffer)
	}
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		return nil, errRelayClosed
	}
	if len(r.sessions) >= r.cfg.MaxViewers {
		r.mu.Unlock()
		r.sessionsCtr.WithLabelValues("refused").Inc()
		return nil, fmt.Errorf("%w (%d)", ErrTooMany, r.cfg.MaxViewers)
	}
	if until := r.busyUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		r.mu.Unlock()
		r.sessionsCtr.WithLabelValues("refused").Inc()
		return nil, fmt.Errorf("%w (%d viewers); open it on another node or close other views", ErrBusy, r.Viewers(""))
	}
	cs := r.cams[camera]
	if cs == nil {
		cs = newCamSession(r, camera, stream)
		r.cams[camera] = cs
		r.wg.Add(1)
		go func() { defer r.wg.Done(); cs.run() }()
	}
	cs.refs++ // keeps the session while this offer is being answered
	r.mu.Unlock()
	release := func() {
		r.mu.Lock()
		cs.refs--
		r.mu.Unlock()
		r.maybeStop(cs)
	}

	codec, params, err := cs.waitCodec(ctx, 3*time.Second)
	if err != nil {
		release()
		return nil, err
	}
	v, answer, err := r.newViewer(cs, codec, params, offer, t0)
	if err != nil {
		release()
		return nil, err
	}
	r.mu.Lock()
	r.sessions[v.id] = v
	cs.refs--
	r.mu.Unlock()
	r.viewersGauge.WithLabelValues(camera).Inc()
	cs.join(v)
	return &Session{ID: v.id, Answer: answer}, nil
}

// Close ends a session (WHEP DELETE).
func (r *Relay) CloseSession(camera, id string) error {
	r.mu.Lock()
	v := r.sessions[id]
	r.mu.Unlock()
	if v == nil || v.cam.camera != camera {
		return ErrNoSession
	}
	r.end(v, "closed")
	return nil
}

func (r *Relay) newViewer(cs *camSession, codec streams.Codec, fmtp, offer string, t0 time.Time) (*viewer, string, error) {
	mime := webrtc.MimeTypeH264
	if codec == streams.H265 {
		mime = webrtc.MimeTypeH265
	}
	pc, err := r.api.NewPeerConnection(webrtc.Configuration{ICEServers: r.cfg.ICEServers})
	if err != nil {
		return nil, "", err
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp},
		"video", "vigil-"+cs.camera)
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.Close()
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if !offersCodec(offer, mime) {
		pc.Close()
		name := "H.264"
		if codec == streams.H265 {
			name = "H.265"
		}
		return nil, "", fmt.Errorf("%w: camera %s sends %s and this browser does not offer %s over WebRTC (Safari and Chrome or Edge with hardware H.265 decoding do); its recorded footage plays as MP4",
			ErrCodec, cs.camera, name, name)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return nil, "", fmt.Errorf("%w: %v", ErrCodec, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		pc.Close()
		return nil, "", err
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	v := &viewer{id: hex.EncodeToString(b[:]), cam: cs, pc: pc, track: track, offered: t0,
		q: make(chan *frame, r.cfg.ViewerQueue+r.cfg.GOPCacheFrames), done: make(chan struct{})}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			go r.end(v, "gone")
		}
	})
	r.wg.Add(2)
	go func() { // RTCP from the browser: read so the interceptors see NACKs and reports
		defer r.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := sender.Read(buf)
			if err != nil {
				return
			}
			if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil {
				for _, p := range pkts {
					switch p := p.(type) {
					case *rtcp.PictureLossIndication:
						v.pli.Add(1)
					case *rtcp.TransportLayerNack:
						v.nack(r, p)
					case *rtcp.ReceiverReport:
						for _, rep := range p.Reports {
							v.lossFrac.Store(int32(rep.FractionLost)) // of 256, since the last report
						}
					}
				}
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		select {
		case <-connected:
		case <-time.After(15 * time.Second):
			r.end(v, "failed") // the browser never reached us
			return
		case <-v.done:
			return
		}
		v.write(r)
	}()
	return v, pc.LocalDescription().SDP, nil
}

// offersCodec reports whether an SDP offer lists the codec (rtpmap) in a video section.
func offersCodec(sdp, mime string) bool {
	name := strings.TrimPrefix(mime, "video/")
	return strings.Contains(strings.ToLower(sdp), " "+strings.ToLower(name)+"/90000")
}

// end closes a session once.
func (r *Relay) end(v *viewer, how string) {
	if !v.closing.CompareAndSwap(false, true) {
		return
	}
	close(v.done)
	r.mu.Lock()
	delete(r.sessions, v.id)
	r.mu.Unlock()
	v.cam.leave(v)
	_ = v.pc.Close()
	r.viewersGauge.WithLabelValues(v.cam.camera).Dec()
	r.sessionsCtr.WithLabelValues(how).Inc()
	r.maybeStop(v.cam)
}

// maybeStop stops reading a camera nobody watches.
func (r *Relay) maybeStop(cs *camSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs.mu.Lock()
	idle := len(cs.viewers) == 0 && cs.refs == 0
	cs.mu.Unlock()
	if idle && r.cams[cs.camera] == cs {
		delete(r.cams, cs.camera)
		cs.reader.Close()
	}
}

// frame is one access unit packetized for RTP (sequence numbers and timestamps are per viewer).
type frame struct {
	pkts  []*rtp.Packet
	ts    uint32
	key   bool
	burst bool      // from the GOP cache: sent at once, timestamps squeezed
	at    time.Time // when the relay read it (live frames)
}

// camSession reads one camera for all its viewers.
type camSession struct {
	r      *Relay
	camera string
	reader *streams.Reader
	refs   int // offers being answered (guarded by r.mu)

	start []*streams.Unit // the stream's kept GOP when the session began

	mu        sync.Mutex
	viewers   map[*viewer]struct{}
	gop       []*frame // from the last key frame
	codec     streams.Codec
	fmtp      string
	codecSeen chan struct{}
}

func newCamSession(r *Relay, camera string, s *streams.Stream) *camSession {
	c := &camSession{r: r, camera: camera, viewers: map[*viewer]struct{}{}, codecSeen: make(chan struct{})}
	c.reader, c.start = s.NewReaderWithGOP("live", 64)
	return c
}

func (c *camSession) waitCodec(ctx context.Context, wait time.Duration) (streams.Codec, string, error) {
	select {
	case <-c.codecSeen:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.codec, c.fmtp, nil
	case <-time.After(wait):
		return "", "", fmt.Errorf("%w (no key frame in %v)", ErrNoVideo, wait)
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

func (c *camSession) run() {
	var h264 *rtph264.Encoder
	var h265 *rtph265.Encoder
	start := c.start
	c.start = nil
	for {
		var u *streams.Unit
		if len(start) > 0 { // the GOP the stream kept: a first viewer starts on it at once
			u, start = start[0], start[1:]
		} else {
			var err error
			if u, err = c.reader.Read(c.r.ctx); err != nil {
				return
			}
		}
		var pkts []*rtp.Packet
		var err error
		switch u.Codec {
		case streams.H264:
			if h264 == nil {
				h264 = &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 1200}
				if err := h264.Init(); err != nil {
					return
				}
			}
			pkts, err = h264.Encode(u.NALUs)
		case streams.H265:
			if h265 == nil {
				h265 = &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: 1200}
				if err := h265.Init(); err != nil {
					return
				}
			}
			pkts, err = h265.Encode(u.NALUs)
		default:
			continue
		}
		if err != nil || len(pkts) == 0 {
			continue
		}
		f := &frame{pkts: pkts, ts: uint32(u.PTS * 90000 / time.Second), key: u.Key, at: time.Now()}
		c.mu.Lock()
		if u.Key {
			if c.codec == "" {
				c.codec, c.fmtp = u.Codec, fmtpFor(u)
				close(c.codecSeen)
			}
			c.gop = c.gop[:0]
		}
		if len(c.gop) < c.r.cfg.GOPCacheFrames && (len(c.gop) > 0 || u.Key) {
			c.gop = append(c.gop, f)
		} else if !u.Key {
			c.gop = c.gop[:0] // too long a GOP to cache: viewers wait for the next key frame
		}
		for v := range c.viewers {
			v.offer(f, c.r)
		}
		c.mu.Unlock()
	}
}

// join starts a viewer on the cached GOP (or the next key frame).
func (c *camSession) join(v *viewer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v.waitKey = true
	if len(c.gop) > 0 && c.gop[0].key {
		for i, f := range c.gop {
			bf := *f
			bf.burst = i < len(c.gop)-1 // the newest cached frame sets the pace for the live ones
			v.q <- &bf                  // q holds GOPCacheFrames more than the live queue
		}
		v.waitKey = false
	}
	c.viewers[v] = struct{}{}
}

func (c *camSession) leave(v *viewer) {
	c.mu.Lock()
	delete(c.viewers, v)
	c.mu.Unlock()
}

// fmtpFor builds the SDP format parameters for the camera's codec from its parameter sets.
func fmtpFor(u *streams.Unit) string {
	if u.Codec == streams.H264 {
		for _, n := range u.NALUs {
			if len(n) >= 4 && n[0]&0x1f == 7 { // SPS: profile_idc, constraint flags, level_idc
				return fmt.Sprintf("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=%02x%02x%02x", n[1], n[2], n[3])
			}
		}
		return "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	return ""
}

// viewer is one WebRTC session.
type viewer struct {
	id      string
	cam     *camSession
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackLocalStaticRTP
	offered time.Time
	q       chan *frame
	done    chan struct{}
	closing atomic.Bool
	pli     atomic.Int64

	waitKey bool // writer side (under cam.mu): dropping until the next key frame
	dropped atomic.Int64
	sent    atomic.Int64 // frames written
	// lossFrac is the share of packets (of 256) the browser last reported lost.
	lossFrac atomic.Int32
	// lag is how long the last live frame waited in the relay before it was written (ns), and
	// lagAt when (unix ns): a camera that stops sending leaves no stale lag behind.
	lag, lagAt atomic.Int64

	histMu  sync.Mutex
	hist    [nackHistory]sentPacket // the last packets written, by sequence number
	budget  float64                 // resends allowed now (token bucket)
	refill  time.Time
	resends atomic.Int64
}

// sentPacket is a packet as written to one viewer: the shared original and this viewer's
// sequence number and timestamp.
type sentPacket struct {
	orig     *rtp.Packet
	seq      uint16
	ts       uint32
	resends  uint8
	resentAt time.Time
}

const (
	nackHistory   = 512 // packets kept for resends: ~3 s at 1.5 Mb/s
	resendsPerSec = 60  // a viewer's resend budget (~40% of a 1.5 Mb/s stream's packets)
	// A packet is resent at most maxResends times, and not again within resendGap: a receiver
	// repeats its NACK until the packet arrives (pion's, every 100 ms while the packet is in its
	// window), and repeats that cross a resend on the way are not new losses.
	maxResends = 3
	resendGap  = 20 * time.Millisecond
)

// nack resends what a viewer reports lost, from the history and within its budget.
func (v *viewer) nack(r *Relay, n *rtcp.TransportLayerNack) {
	var out []rtp.Packet
	var gone, over, repeat int
	v.histMu.Lock()
	now := time.Now()
	v.budget = min(resendsPerSec, v.budget+now.Sub(v.refill).Seconds()*resendsPerSec)
	v.refill = now
	for _, pair := range n.Nacks {
		for _, seq := range pair.PacketList() {
			h := &v.hist[seq%nackHistory]
			switch {
			case h.orig == nil || h.seq != seq:
				gone++
			case h.resends >= maxResends || now.Sub(h.resentAt) < resendGap:
				repeat++
			case v.budget < 1:
				over++
			default:
				v.budget--
				h.resends++
				h.resentAt = now
				p := rtp.Packet{Header: h.orig.Header, Payload: h.orig.Payload}
				p.SequenceNumber, p.Timestamp = h.seq, h.ts
				out = append(out, p)
			}
		}
	}
	v.histMu.Unlock()
	resent := 0
	for i := range out {
		if v.track.WriteRTP(&out[i]) == nil {
			resent++
		}
	}
	v.resends.Add(int64(resent))
	r.nackGone.Add(float64(gone))
	r.nackOver.Add(float64(over))
	r.nackRepeat.Add(float64(repeat))
	r.nackResent.Add(float64(resent))
}

// offer queues a frame for the viewer without blocking (called under cam.mu).
func (v *viewer) offer(f *frame, r *Relay) {
	if v.waitKey {
		if !f.key {
			return
		}
		v.waitKey = false
	}
	select {
	case v.q <- f:
	default: // behind: lose this frame and everything to the next key frame
		v.waitKey = true
		v.dropped.Add(1)
		r.dropped.WithLabelValues(v.cam.camera).Inc()
	}
}

// write sends the viewer's frames with its own sequence numbers and timestamps: burst frames 1
// tick apart, the others at the camera's spacing.
func (v *viewer) write(r *Relay) {
	var seq uint16
	var b [6]byte
	_, _ = rand.Read(b[:])
	seq = uint16(b[0])<<8 | uint16(b[1])
	out := uint32(b[2])<<24 | uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
	var lastIn uint32
	first := true
	for {
		var f *frame
		select {
		case f = <-v.q:
		case <-v.done:
			return
		}
		switch {
		case first:
		case f.burst:
			out++
		default:
			out += f.ts - lastIn
		}
		lastIn = f.ts
		v.histMu.Lock()
		for i, p := range f.pkts {
			v.hist[(seq+uint16(i))%nackHistory] = sentPacket{orig: p, seq: seq + uint16(i), ts: out}
		}
		v.histMu.Unlock()
		for _, p := range f.pkts {
			pkt := rtp.Packet{Header: p.Header, Payload: p.Payload}
			pkt.SequenceNumber = seq
			pkt.Timestamp = out
			seq++
			if err := v.track.WriteRTP(&pkt); err != nil {
				if errors.Is(err, net.ErrClosed) || errors.Is(err, errRelayClosed) {
					return
				}
			}
		}
		if first {
			first = false
			r.firstFrame.Observe(time.Since(v.offered).Seconds())
		}
		if !f.burst {
			now := time.Now()
			v.lag.Store(int64(now.Sub(f.at)))
			v.lagAt.Store(now.UnixNano())
		}
		v.sent.Add(1)
	}
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
