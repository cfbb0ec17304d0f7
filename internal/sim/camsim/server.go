package camsim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// Config configures a Server.
type Config struct {
	// RTSPAddress to listen on. Default 127.0.0.1:8554.
	RTSPAddress string
	// UDPRTPAddress and UDPRTCPAddress enable the UDP transport when both are set.
	UDPRTPAddress, UDPRTCPAddress string
	// Cameras published at /cam/001 … /cam/NNN.
	Cameras int
	// User and Pass, when set, are required from readers and publishers.
	User, Pass string
	// Seed spreads the cameras' start offsets in their clips.
	Seed uint64
	// Timestamps puts an SEI message with the send time in front of every frame (TimeSEI), for
	// latency measurements downstream.
	Timestamps bool
	// Truth receives a line for every passage; may be nil.
	Truth *TruthWriter
	// Shards is the number of sender goroutines. Default 2.
	Shards int
	// InStep sends every camera's frame at the same instant of each frame interval, as camsim
	// did before cameras had phases (a real fleet's cameras run on their own clocks, so their
	// frames come spread over the interval). For comparisons.
	InStep bool
	// Site, when set, makes the fleet the site's load model (--activity site) instead of looping
	// the clips: camera i is a camera of Site.Scenes[i] and plays that scene's clips one after
	// another, passages at the hour's rate.
	Site *Site
}

// Site is a fleet that models the site.
type Site struct {
	Scenes   []string                 // per camera (SiteScenes)
	Clips    map[string][]*SceneClips // per scene, its looks (BuildSite)
	Activity Activity
}

// Server is the simulated fleet: an RTSP server with one path per camera, each replaying a
// clip, plus any stream an RTSP client publishes (ANNOUNCE/RECORD) on another path.
type Server struct {
	cfg   Config
	log   *slog.Logger
	srv   *gortsplib.Server
	clips []*packetClip
	cams  []*camera

	mu        sync.RWMutex // guards published and the cameras' streams while Start publishes them
	published map[string]*publication

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type publication struct {
	stream  *gortsplib.ServerStream
	session *gortsplib.ServerSession
}

// packetClip is a clip packetized once; cameras share its payloads.
type packetClip struct {
	clip    *Clip
	frames  [][]*rtp.Packet
	sub     [][]*rtp.Packet  // the sub-stream's frames, when the clip has one
	entries map[int][]*Event // frame index → events becoming wholly visible there
}

type camera struct {
	path  string
	scene string      // with a Site
	clip  *packetClip // looped without a Site; with one, the clip whose parameter sets the streams announce
	plan  *sitePlan   // with a Site: what plays next
	cur   *packetClip // what plays now, and where
	pos   int
	out   []*output // the main stream, then the sub-stream when the clip has one
	// phase is where in each frame interval this camera's frames are taken, as a fraction of
	// the interval; sent counts the frames sent so far.
	phase float64
	sent  int64
}

// output is one RTSP stream of a camera: its path and its own RTP sequence and timestamp base,
// as a real camera's streams have.
type output struct {
	path   string
	sub    bool
	sps    []byte
	pps    []byte
	stream *gortsplib.ServerStream
	media  *description.Media
	seq    uint16 // next RTP sequence number
	tsBase uint32
}

// NewServer packetizes clips and prepares cameras; camera i replays clips[i%len(clips)].
func NewServer(cfg Config, clips []*Clip, log *slog.Logger) (*Server, error) {
	if cfg.RTSPAddress == "" {
		cfg.RTSPAddress = "127.0.0.1:8554"
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 2
	}
	if cfg.Cameras < 0 || len(clips) == 0 && cfg.Site == nil {
		return nil, fmt.Errorf("camsim: need clips and a non-negative camera count")
	}
	s := &Server{cfg: cfg, log: log.With("component", "camsim"), published: map[string]*publication{}}
	for _, c := range clips {
		pc, err := packetize(c)
		if err != nil {
			return nil, err
		}
		s.clips = append(s.clips, pc)
	}
	s.srv = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    cfg.RTSPAddress,
		UDPRTPAddress:  cfg.UDPRTPAddress,
		UDPRTCPAddress: cfg.UDPRTCPAddress,
		WriteQueueSize: 2048, // a 720p key frame is ~100 packets; bursts of them must not overflow
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   10 * time.Second,
		Listen:         coalescingListen,
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 99))
	plans, err := s.sitePlans(rng)
	if err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Cameras; i++ {
		c := &camera{path: CameraPath(i + 1)}
		if !cfg.InStep {
			// Spread evenly over the interval, each shard's cameras (camera i is shard i mod
			// Shards's) and the shards' between each other's, not at random: a fleet of
			// free-running cameras whose phases happened to bunch up would be bad luck.
			sh, k := i%cfg.Shards, i/cfg.Shards
			inShard := (cfg.Cameras - sh + cfg.Shards - 1) / cfg.Shards
			c.phase = (float64(k) + float64(sh)/float64(cfg.Shards)) / float64(inShard)
		}
		if plans != nil {
			c.plan, c.scene = plans[i], plans[i].scene
			c.clip = plans[i].clips.idle[0]
		} else {
			c.clip = s.clips[i%len(s.clips)]
		}
		// Cameras are not in step: each starts somewhere in its first clip, so their key frames
		// do not all come at once (readers start at the next one).
		c.cur, c.pos = c.clip, rng.IntN(len(c.clip.frames))
		c.out = append(c.out, &output{path: c.path, sps: c.clip.clip.SPS, pps: c.clip.clip.PPS,
			seq: uint16(rng.Uint32()), tsBase: rng.Uint32()})
		if c.clip.sub != nil {
			c.out = append(c.out, &output{path: SubPath(i + 1), sub: true, sps: c.clip.clip.Sub.SPS, pps: c.clip.clip.Sub.PPS,
				seq: uint16(rng.Uint32()), tsBase: rng.Uint32()})
		}
		s.cams = append(s.cams, c)
	}
	return s, nil
}

// sitePlans packetizes the site's clips once and gives each camera its plan; nil without a Site.
func (s *Server) sitePlans(rng *rand.Rand) ([]*sitePlan, error) {
	site := s.cfg.Site
	if site == nil {
		return nil, nil
	}
	if len(site.Scenes) < s.cfg.Cameras {
		return nil, fmt.Errorf("camsim: %d cameras but %d scenes", s.cfg.Cameras, len(site.Scenes))
	}
	packed := map[*SceneClips]*packetScene{}
	seen := map[string]int{}
	var plans []*sitePlan
	for i := 0; i < s.cfg.Cameras; i++ {
		scene := site.Scenes[i]
		looks := site.Clips[scene]
		if len(looks) == 0 {
			return nil, fmt.Errorf("camsim: no clips for scene %q", scene)
		}
		sc := looks[seen[scene]%len(looks)]
		seen[scene]++
		ps := packed[sc]
		if ps == nil {
			ps = &packetScene{}
			for _, group := range []struct {
				src []*Clip
				dst *[]*packetClip
			}{{sc.Idle, &ps.idle}, {sc.Passages, &ps.passages}, {sc.Groups, &ps.groups}} {
				for _, c := range group.src {
					pc, err := packetize(c)
					if err != nil {
						return nil, err
					}
					*group.dst = append(*group.dst, pc)
				}
			}
			if len(ps.idle) == 0 || len(ps.passages) == 0 {
				return nil, fmt.Errorf("camsim: scene %q has no idle or passage clips", scene)
			}
			packed[sc] = ps
		}
		plans = append(plans, &sitePlan{scene: scene, clips: ps, rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(i))),
			act: site.Activity, start: time.Now(), played: map[string]int{}})
	}
	return plans, nil
}

// CameraPath is the RTSP path of camera n (1-based).
func CameraPath(n int) string { return fmt.Sprintf("/cam/%03d", n) }

// SubPath is the RTSP path of camera n's sub-stream, served when the clips have one.
func SubPath(n int) string { return CameraPath(n) + "/sub" }

func packetize(c *Clip) (*packetClip, error) {
	pc := &packetClip{clip: c, entries: map[int][]*Event{}}
	var err error
	if pc.frames, err = packetizeUnits(c.SPS, c.PPS, c.Units); err != nil {
		return nil, err
	}
	if c.Sub != nil {
		if pc.sub, err = packetizeUnits(c.Sub.SPS, c.Sub.PPS, c.Sub.Units); err != nil {
			return nil, err
		}
	}
	for i := range c.Events {
		e := &c.Events[i]
		if e.Kind == "car" {
			continue // a car without a readable plate is background motion, not a passage
		}
		fr := int(e.Enter*float64(c.Params.FPS) + 0.999)
		pc.entries[fr] = append(pc.entries[fr], e)
	}
	return pc, nil
}

func packetizeUnits(sps, pps []byte, units [][][]byte) ([][]*rtp.Packet, error) {
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}
	enc, err := f.CreateEncoder()
	if err != nil {
		return nil, err
	}
	out := make([][]*rtp.Packet, 0, len(units))
	for _, au := range units {
		pkts, err := enc.Encode(au)
		if err != nil {
			return nil, fmt.Errorf("camsim: packetizing: %w", err)
		}
		out = append(out, pkts)
	}
	return out, nil
}

func (s *Server) newStream(sps, pps []byte) (*gortsplib.ServerStream, *description.Media, error) {
	medi := &description.Media{Type: description.MediaTypeVideo,
		Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}}}
	st := &gortsplib.ServerStream{Server: s.srv, Desc: &description.Session{Medias: []*description.Media{medi}}}
	if err := st.Initialize(); err != nil {
		return nil, nil, err
	}
	return st, medi, nil
}

// Start listens and starts replaying.
func (s *Server) Start() error {
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("camsim: listen %s: %w", s.cfg.RTSPAddress, err)
	}
	// Clients may connect as soon as the listener is up: streams are published under the lock
	// that lookup takes.
	s.mu.Lock()
	for _, c := range s.cams {
		for _, o := range c.out {
			st, medi, err := s.newStream(o.sps, o.pps)
			if err != nil {
				s.mu.Unlock()
				s.closeStreams()
				s.srv.Close()
				return err
			}
			o.stream, o.media = st, medi
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	start := time.Now()
	for sh := 0; sh < s.cfg.Shards; sh++ {
		var mine []*camera
		for i := sh; i < len(s.cams); i += s.cfg.Shards {
			mine = append(mine, s.cams[i])
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.replay(ctx, start, mine)
		}()
	}
	s.log.Info("camera fleet ready", "cameras", len(s.cams), "address", s.cfg.RTSPAddress, "clips", len(s.clips))
	return nil
}

// replay sends every camera of a shard its frames on schedule, catching up after a late tick.
// Each camera's frames are due at its own phase of the frame interval, so the shard wakes
// phaseSlots times an interval and sends the frames due by then.
func (s *Server) replay(ctx context.Context, start time.Time, cams []*camera) {
	if len(cams) == 0 {
		return
	}
	fps := cams[0].clip.clip.Params.FPS // every clip of a fleet has the same
	interval := time.Second / time.Duration(fps)
	slots := phaseSlots
	if s.cfg.InStep {
		slots = 1
	}
	tick := time.NewTicker(interval / time.Duration(slots))
	defer tick.Stop()
	var pkt rtp.Packet
	for {
		elapsed := time.Since(start)
		for _, c := range cams {
			at := time.Duration(c.phase * float64(interval))
			due := int64((elapsed-at)/interval) + 1
			if elapsed < at {
				due = 0
			}
			for ; c.sent < due; c.sent++ {
				s.sendFrame(c, c.sent, start.Add(at+time.Duration(c.sent)*interval), &pkt)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// phaseSlots is how many times a frame interval a shard wakes to send the frames due: a
// camera's frame leaves at most interval/phaseSlots after its moment.
const phaseSlots = 10

// sendFrame sends frame k of every stream of the camera, all stamped with the same capture time
// (ntp, carried by RTCP sender reports), as a camera's main and sub-streams come from one sensor.
func (s *Server) sendFrame(c *camera, k int64, ntp time.Time, pkt *rtp.Packet) {
	if c.pos >= len(c.cur.frames) {
		// Clips start on key frames in every stream, so they join without a decoder noticing.
		c.cur, c.pos = c.clip, 0
		if c.plan != nil {
			c.cur = c.plan.next(ntp)
		}
	}
	pc, idx := c.cur, c.pos
	c.pos++
	for _, o := range c.out {
		frames := pc.frames
		if o.sub {
			frames = pc.sub
		}
		s.sendOutput(o, frames[idx], uint32(k*90000/int64(c.clip.clip.Params.FPS)), ntp, pkt)
	}
	if s.cfg.Truth == nil {
		return
	}
	for _, e := range pc.entries[idx] {
		s.cfg.Truth.Write(c.path, c.scene, e, ntp)
	}
	if k == 0 { // the camera starts mid-clip: passages already wholly in view are passages too
		fps := float64(pc.clip.Params.FPS)
		for i := range pc.clip.Events {
			e := &pc.clip.Events[i]
			if e.Kind == "car" {
				continue
			}
			if enter := int(e.Enter*fps + 0.999); enter < idx && float64(idx) < e.Leave*fps {
				s.cfg.Truth.WritePartial(c.path, e, ntp, ntp.Add(time.Duration((e.Leave-float64(idx)/fps)*float64(time.Second))))
			}
		}
	}
}

func (s *Server) sendOutput(o *output, frame []*rtp.Packet, dts uint32, ntp time.Time, pkt *rtp.Packet) {
	ts := o.tsBase + dts
	if s.cfg.Timestamps {
		pkt.Header = frame[0].Header
		pkt.Marker = false
		pkt.SequenceNumber = o.seq
		pkt.Timestamp = ts
		pkt.Payload = TimeSEI(time.Now())
		o.seq++
		if err := o.stream.WritePacketRTPWithNTP(o.media, pkt, ntp); err != nil {
			return
		}
	}
	for _, tpl := range frame {
		pkt.Header = tpl.Header
		pkt.SequenceNumber = o.seq
		pkt.Timestamp = ts
		pkt.Payload = tpl.Payload
		o.seq++
		if err := o.stream.WritePacketRTPWithNTP(o.media, pkt, ntp); err != nil {
			return // stream closed on shutdown
		}
	}
}

func (s *Server) closeStreams() {
	for _, c := range s.cams {
		for _, o := range c.out {
			if o.stream != nil {
				o.stream.Close()
			}
		}
	}
}

// Close stops replaying, closes every stream and the listener.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.closeStreams()
	s.mu.Lock()
	for _, p := range s.published {
		p.stream.Close()
	}
	s.published = map[string]*publication{}
	s.mu.Unlock()
	s.srv.Close()
}

func (s *Server) auth(conn *gortsplib.ServerConn, req *base.Request) bool {
	return s.cfg.User == "" || conn.VerifyCredentials(req, s.cfg.User, s.cfg.Pass)
}

func (s *Server) lookup(path string) *gortsplib.ServerStream {
	path = "/" + strings.TrimPrefix(path, "/")
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int
	if _, err := fmt.Sscanf(path, "/cam/%d", &n); err == nil && n >= 1 && n <= len(s.cams) {
		for _, o := range s.cams[n-1].out {
			if path == o.path {
				return o.stream // nil until Start publishes it
			}
		}
	}
	if p, ok := s.published[path]; ok {
		return p.stream
	}
	return nil
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return s.streamFor(ctx.Conn, ctx.Request, ctx.Path)
}

// streamFor answers DESCRIBE and SETUP: the client's credentials, then the path's stream.
func (s *Server) streamFor(conn *gortsplib.ServerConn, req *base.Request, path string) (*base.Response, *gortsplib.ServerStream, error) {
	if !s.auth(conn, req) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	st := s.lookup(path)
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	return s.streamFor(ctx.Conn, ctx.Request, ctx.Path)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *Server) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnAnnounce accepts a publisher on any path that is not a simulated camera.
func (s *Server) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	if !s.auth(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
	}
	path := "/" + strings.TrimPrefix(ctx.Path, "/")
	if strings.HasPrefix(path, "/cam/") {
		return &base.Response{StatusCode: base.StatusBadRequest}, fmt.Errorf("camsim: %s is a simulated camera", path)
	}
	st := &gortsplib.ServerStream{Server: s.srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, err
	}
	s.mu.Lock()
	if old, ok := s.published[path]; ok {
		old.stream.Close()
		old.session.Close()
	}
	s.published[path] = &publication{stream: st, session: ctx.Session}
	s.mu.Unlock()
	s.log.Info("publisher announced", "path", path)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord relays a publisher's packets to its readers.
func (s *Server) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	path := "/" + strings.TrimPrefix(ctx.Path, "/")
	s.mu.RLock()
	p := s.published[path]
	s.mu.RUnlock()
	if p == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		_ = p.stream.WritePacketRTP(medi, pkt)
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose drops a publication whose publisher left.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for path, p := range s.published {
		if p.session == ctx.Session {
			p.stream.Close()
			delete(s.published, path)
		}
	}
}
