// Package whep is a headless WHEP viewer built on pion: what the live tests and the viewer
// load bench use in place of a browser. It counts frames (RTP marker bits), bytes and the time
// to the first frame, and can read the send time camsim stamps into each frame (an SEI message)
// to measure the relay's added latency.
package whep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Options configures a viewer.
type Options struct {
	Token  string // bearer token
	Client *http.Client
	// Codecs limits what the viewer offers ("video/H264", "video/H265"); empty: pion's defaults.
	Codecs []string
	// OnPacket sees every RTP packet (from the track's goroutine).
	OnPacket func(p *rtp.Packet, at time.Time)
	// ReadBuffer, when set, is the viewer's UDP receive buffer (SO_RCVBUF, capped by the
	// kernel's net.core.rmem_max). The load bench runs hundreds of viewers on one CPU, where a
	// viewer's goroutine may wait long enough for the default buffer to overflow.
	ReadBuffer int
}

// bufNet is pion's standard network with a larger receive buffer on every UDP socket.
type bufNet struct {
	*stdnet.Net
	size int
}

func (n bufNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if u, ok := c.(*net.UDPConn); ok && err == nil {
		_ = u.SetReadBuffer(n.size)
	}
	return c, err
}

// Viewer is one WHEP session.
type Viewer struct {
	pc       *webrtc.PeerConnection
	location string
	opts     Options
	started  time.Time

	Frames     atomic.Int64
	Packets    atomic.Int64
	Bytes      atomic.Int64
	firstFrame atomic.Int64 // ns after start; 0: none yet
	codec      atomic.Value
	done       chan struct{}
	closeOnce  sync.Once
	ended      atomic.Bool
}

// Error is a refused WHEP request.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("whep: %d %s", e.Status, strings.TrimSpace(e.Body))
}

// Dial offers to receive url's video (POST …/whep) and connects.
func Dial(ctx context.Context, url string, o Options) (*Viewer, error) {
	api, err := newAPI(o)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{pc: pc, opts: o, started: time.Now(), done: make(chan struct{})}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		pc.GracefulClose()
		return nil, err
	}
	v.receive(o)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.GracefulClose()
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.GracefulClose()
		return nil, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		pc.GracefulClose()
		return nil, ctx.Err()
	}
	v.started = time.Now() // the offer leaves now
	answer, err := v.post(ctx, url, o)
	if err != nil {
		pc.GracefulClose()
		return nil, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		pc.GracefulClose()
		return nil, fmt.Errorf("whep: answer: %w", err)
	}
	return v, nil
}

// newAPI is a receiver as a browser is: the codecs asked for (default pion's), NACKs for lost
// packets (each packet asked for at most 10 times, as libwebrtc's kMaxNackRetries; pion's
// default asks until it leaves the window) and receiver reports.
func newAPI(o Options) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if len(o.Codecs) == 0 {
		if err := me.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
	} else {
		for i, c := range o.Codecs {
			fmtp := ""
			if c == webrtc.MimeTypeH264 {
				fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
			}
			if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: c, ClockRate: 90000, SDPFmtpLine: fmtp,
				RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: webrtc.PayloadType(102 + i)}, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, err
			}
		}
	}
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(10))
	if err != nil {
		return nil, err
	}
	ir.Add(gen) // (every codec registered above already offers nack and nack pli)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if o.ReadBuffer > 0 {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		se.SetNet(bufNet{n, o.ReadBuffer})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// receive counts what arrives: packets, bytes, frames (marker bits) and the first frame's time.
func (v *Viewer) receive(o Options) {
	v.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		// The server's hang-up (DTLS close) can be lost on the way; then ICE fails on the silence
		// (not "disconnected", which a busy viewer may pass through and recover from).
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			v.ended.Store(true)
		}
	})
	v.pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.codec.Store(t.Codec().MimeType)
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				v.ended.Store(true) // the server hung up (or we closed)
				return
			}
			now := time.Now()
			v.Packets.Add(1)
			v.Bytes.Add(int64(len(p.Payload)))
			if p.Marker {
				if v.Frames.Add(1) == 1 {
					v.firstFrame.Store(int64(now.Sub(v.started)))
				}
			}
			if o.OnPacket != nil {
				o.OnPacket(p, now)
			}
		}
	})
}

// post sends the offer and returns the answer; the session's Location is kept for Close.
func (v *Viewer) post(ctx context.Context, url string, o Options) (string, error) {
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(v.pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	if o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", &Error{Status: resp.StatusCode, Body: string(body)}
	}
	v.location = resp.Header.Get("Location")
	if strings.HasPrefix(v.location, "/") {
		if i := strings.Index(url, "/v1/"); i > 0 {
			v.location = url[:i] + v.location
		}
	}
	return string(body), nil
}

// Ended reports that the session's media stopped: the server ended it, ICE failed, or Close
// was called.
func (v *Viewer) Ended() bool { return v.ended.Load() }

// FirstFrame is the time from the offer to the first whole frame received (0: none yet).
func (v *Viewer) FirstFrame() time.Duration { return time.Duration(v.firstFrame.Load()) }

// Codec is the negotiated codec's MIME type, once media flows.
func (v *Viewer) Codec() string {
	s, _ := v.codec.Load().(string)
	return s
}

// Close ends the session: DELETE on its resource (when hangUp), then the peer connection.
func (v *Viewer) Close(hangUp bool) error {
	var err error
	v.closeOnce.Do(func() {
		if hangUp && v.location != "" {
			req, _ := http.NewRequest("DELETE", v.location, nil)
			if v.opts.Token != "" {
				req.Header.Set("Authorization", "Bearer "+v.opts.Token)
			}
			client := v.opts.Client
			if client == nil {
				client = http.DefaultClient
			}
			resp, e := client.Do(req)
			if e == nil {
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					e = &Error{Status: resp.StatusCode}
				}
			}
			err = e
		}
		err = errors.Join(err, v.pc.GracefulClose())
		close(v.done)
	})
	return err
}

// WaitFrames waits until n frames arrived or ctx ends.
func (v *Viewer) WaitFrames(ctx context.Context, n int64) error {
	for v.Frames.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("whep: %d of %d frames: %w", v.Frames.Load(), n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
