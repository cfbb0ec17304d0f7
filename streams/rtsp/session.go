// Package rtsp owns camera sessions: one gortsplib client per camera that connects, plays,
// assembles access units into a streams.Stream, and reconnects with capped exponential backoff
// and jitter when anything goes wrong. Pool owns the set of sessions of a node.
package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"

	"github.com/vigil-oss/vigil/streams"
)

// State is where a session is in its life.
type State string

// Session states.
const (
	StateConnecting State = "connecting" // dialling, DESCRIBE/SETUP/PLAY in progress
	StateLive       State = "live"       // units are arriving
	StateBackoff    State = "backoff"    // a transient failure; waiting to retry
	StateFailed     State = "failed"     // the camera refused us (auth, path, codec); still retried
	StateStopped    State = "stopped"    // removed or shutting down
)

// Config describes one camera.
type Config struct {
	ID        string
	URL       string // may carry credentials: never logged as is
	Transport string // tcp, udp or auto
	// Backoff between attempts: Min doubling up to Max, with ±20% jitter.
	BackoffMin, BackoffMax time.Duration
	ReadTimeout            time.Duration
	// ErrorLogInterval aggregates malformed-input logs. Default 10s.
	ErrorLogInterval time.Duration
}

// Session pulls one camera. Run owns all its state; Status may be called from any goroutine.
type Session struct {
	cfg    Config
	log    *slog.Logger
	stream *streams.Stream

	mu        sync.Mutex    // guards the fields below, read by Status
	added     time.Time     // when the session was created
	liveTotal time.Duration // time live before the current state
	state     State
	lastErr   string
	codec     streams.Codec
	width     int
	height    int
	since     time.Time
	transport string
	retryAt   time.Time     // when the next attempt starts, in backoff and failed states
	wait      time.Duration // the jittered backoff step being waited

	reconnects atomic.Uint64
	lost       atomic.Uint64 // RTP packets lost on the wire
	malformed  atomic.Uint64 // packets, NAL units or SPS the depacketizer refused
}

// NewSession returns a session that writes into stream once Run is called.
func NewSession(cfg Config, stream *streams.Stream, log *slog.Logger) *Session {
	if cfg.ErrorLogInterval <= 0 {
		cfg.ErrorLogInterval = 10 * time.Second
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = time.Second
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	now := time.Now()
	return &Session{
		cfg: cfg, stream: stream, state: StateConnecting, since: now, added: now,
		log: log.With("component", "rtsp", "camera", cfg.ID),
	}
}

// Stream is where the session writes.
func (s *Session) Stream() *streams.Stream { return s.stream }

// Run connects and reconnects until ctx ends.
func (s *Session) Run(ctx context.Context) {
	defer s.setState(StateStopped, "")
	step := s.cfg.BackoffMin
	for {
		s.setState(StateConnecting, "")
		wasLive, err := s.attempt(ctx)
		s.stream.ResetRates()
		if ctx.Err() != nil {
			return
		}
		if wasLive {
			step = s.cfg.BackoffMin // a session that worked starts its backoff afresh
		}
		state := StateBackoff
		if permanent(err) {
			state = StateFailed
		}
		s.reconnects.Add(1)
		wait := jitter(step)
		s.setState(state, err.Error())
		s.mu.Lock()
		s.retryAt, s.wait = time.Now().Add(wait), wait
		s.mu.Unlock()
		s.log.Warn("camera session ended", "state", state, "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		step = min(step*2, s.cfg.BackoffMax)
	}
}

// jitter spreads retries ±20% so cameras behind one failed switch do not reconnect in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// permanent tells errors the camera will repeat (auth, missing path, no usable codec) from
// transient ones. Both are retried; the state tells an operator which it is.
func permanent(err error) bool {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return bad.Code == base.StatusUnauthorized || bad.Code == base.StatusForbidden || bad.Code == base.StatusNotFound
	}
	return errors.Is(err, errNoVideo) || errors.Is(err, errBadURL)
}

var (
	errNoVideo = errors.New("the camera offers no H.264 or H.265 video track")
	errBadURL  = errors.New("bad camera URL")
)

func (s *Session) attempt(ctx context.Context) (wasLive bool, err error) {
	u, err := base.ParseURL(s.cfg.URL)
	if err != nil {
		return false, fmt.Errorf("%w: %v", errBadURL, scrub(err.Error(), s.cfg.URL))
	}
	c := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: s.cfg.ReadTimeout,
		UserAgent:   "vigil",
	}
	switch s.cfg.Transport {
	case "udp":
		t := gortsplib.TransportUDP
		c.Transport = &t
	case "auto":
	default:
		t := gortsplib.TransportTCP
		c.Transport = &t
	}
	var live atomic.Bool
	c.OnPacketsLost = func(n uint64) { s.lost.Add(n) }
	c.OnDecodeError = func(error) { s.malformed.Add(1) }
	c.OnTransportSwitch = func(error) {
		s.mu.Lock()
		s.transport = "tcp"
		s.mu.Unlock()
	}
	if err := c.Start2(); err != nil {
		return false, err
	}
	// Close the client when ctx ends so Wait returns.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	defer c.Close()

	desc, _, err := c.Describe(u)
	if err != nil {
		return false, s.clean(err)
	}
	medi, dep, err := pickVideo(desc)
	if err != nil {
		return false, err
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return false, s.clean(err)
	}
	forma := medi.Formats[0]
	logger := newErrorLogger(s.log, s.cfg.ErrorLogInterval)
	var lastRejected uint64
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		now := time.Now()
		if !live.Load() {
			// Media is flowing: the camera is live even before its first key unit.
			live.Store(true)
			s.mu.Lock()
			s.state, s.since, s.lastErr = StateLive, now, ""
			s.mu.Unlock()
		}
		pts, ok := c.PacketPTS2(medi, pkt)
		if !ok {
			return // timestamps start at the first key unit
		}
		unit := dep.Decode(pkt, time.Duration(pts)*time.Second/time.Duration(forma.ClockRate()), now)
		if bad := dep.Errors.Total(); bad != lastRejected {
			s.malformed.Add(bad - lastRejected)
			lastRejected = bad
			logger.note(dep.LastError)
		}
		if unit == nil {
			return
		}
		if ntp, ok := c.PacketNTP(medi, pkt); ok {
			unit.Capture = ntp
		}
		if unit.Key {
			w, h := dep.Size()
			s.mu.Lock()
			changed := w != s.width || h != s.height
			s.width, s.height = w, h
			s.mu.Unlock()
			if changed {
				s.log.Info("camera picture", "codec", unit.Codec, "width", w, "height", h)
			}
		}
		s.stream.Write(unit)
	})
	s.mu.Lock()
	s.width, s.height = dep.Size() // from the SDP's parameter sets, when it has them
	s.codec = streams.Codec(forma.Codec())
	s.transport = strings.ToLower(transportName(c))
	s.mu.Unlock()
	if _, err := c.Play(nil); err != nil {
		return false, s.clean(err)
	}
	err = c.Wait()
	logger.flush()
	return live.Load(), s.clean(err)
}

func transportName(c *gortsplib.Client) string {
	if c.Transport != nil {
		return c.Transport.String()
	}
	return "auto"
}

func pickVideo(desc *description.Session) (*description.Media, *streams.Depacketizer, error) {
	var h264 *format.H264
	if medi := desc.FindFormat(&h264); medi != nil {
		sps, pps := h264.SafeParams()
		dep, err := streams.NewDepacketizer(streams.H264, nil, sps, pps)
		medi.Formats = []format.Format{h264}
		return medi, dep, err
	}
	var h265 *format.H265
	if medi := desc.FindFormat(&h265); medi != nil {
		vps, sps, pps := h265.SafeParams()
		dep, err := streams.NewDepacketizer(streams.H265, vps, sps, pps)
		medi.Formats = []format.Format{h265}
		return medi, dep, err
	}
	return nil, nil, errNoVideo
}

// clean removes credentials from errors that quote the URL.
func (s *Session) clean(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if cleaned := scrub(msg, s.cfg.URL); cleaned != msg {
		return errors.New(cleaned)
	}
	return err
}

func scrub(msg, rawURL string) string {
	u, err := base.ParseURL(rawURL)
	if err != nil || u.User == nil {
		return msg
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

func (s *Session) setState(st State, errMsg string) {
	s.mu.Lock()
	if s.state != st {
		now := time.Now()
		if s.state == StateLive {
			s.liveTotal += now.Sub(s.since)
		}
		s.since = now
	}
	s.state = st
	if errMsg != "" {
		s.lastErr = errMsg
	}
	s.mu.Unlock()
}

// Status is what the API shows about a camera.
type Status struct {
	ID           string        `json:"id"`
	URL          string        `json:"url"` // credentials redacted
	State        State         `json:"state"`
	Since        time.Time     `json:"since"`
	LastError    string        `json:"last_error,omitempty"`
	Transport    string        `json:"transport,omitempty"`
	Codec        streams.Codec `json:"codec,omitempty"`
	Width        int           `json:"width,omitempty"`
	Height       int           `json:"height,omitempty"`
	FPS          float64       `json:"fps"`
	Bitrate      uint64        `json:"bitrate_bps"`
	LastKeyframe *time.Time    `json:"last_keyframe,omitempty"`
	Units        uint64        `json:"units"`
	Bytes        uint64        `json:"bytes"`
	Reconnects   uint64        `json:"reconnects"`
	LostPackets  uint64        `json:"lost_packets"`
	Malformed    uint64        `json:"malformed"`
	Dropped      uint64        `json:"dropped_units"` // lost by slow readers
	Readers      int           `json:"readers"`
	// RetryAt and Backoff are set in backoff and failed states: when the next attempt starts and
	// the (jittered) step being waited.
	RetryAt *time.Time    `json:"retry_at,omitempty"`
	Backoff time.Duration `json:"backoff_ns,omitempty"`
	// Uptime is the share of the time since the camera was added that it was live.
	Uptime float64 `json:"uptime"`
}

// Status returns a snapshot.
func (s *Session) Status() Status {
	st := s.stream.Stats()
	s.mu.Lock()
	out := Status{
		ID: s.cfg.ID, URL: redactURL(s.cfg.URL), State: s.state, Since: s.since, LastError: s.lastErr,
		Transport: s.transport, Codec: s.codec, Width: s.width, Height: s.height,
	}
	live := s.liveTotal
	if s.state == StateLive {
		live += time.Since(s.since)
	}
	if total := time.Since(s.added); total > 0 {
		out.Uptime = min(1, live.Seconds()/total.Seconds())
	}
	if s.state == StateBackoff || s.state == StateFailed {
		r := s.retryAt
		out.RetryAt, out.Backoff = &r, s.wait
	}
	s.mu.Unlock()
	out.FPS, out.Bitrate, out.Units, out.Bytes = st.FPS, st.Bitrate, st.Units, st.Bytes
	out.Readers, out.Dropped = st.Readers, st.ReaderDrops
	if !st.LastKey.IsZero() {
		k := st.LastKey
		out.LastKeyframe = &k
	}
	out.Reconnects, out.LostPackets, out.Malformed = s.reconnects.Load(), s.lost.Load(), s.malformed.Load()
	return out
}

func redactURL(raw string) string {
	u, err := base.ParseURL(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (*url.URL)(u).Redacted()
}
