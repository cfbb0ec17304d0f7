package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/vigil-oss/vigil/streams"
)

// The relay's registry of sessions: answering a WHEP offer (admission, codec, one camera session
// shared by its viewers), and ending sessions.

// Session is an answered WHEP offer.
type Session struct {
	ID     string
	Answer string // SDP
}

// Offer answers a browser's WHEP offer for a camera on behalf of owner (the principal; "" for
// none). The answer carries every ICE candidate (no trickle needed). The viewer's slot is taken
// before the answer is gathered, so a flood of offers cannot overshoot the node's or the owner's
// limit while they are being answered.
func (r *Relay) Offer(ctx context.Context, camera, offer, owner string) (*Session, error) {
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
	if len(r.sessions)+r.pending >= r.cfg.MaxViewers {
		r.mu.Unlock()
		r.sessionsCtr.WithLabelValues("refused").Inc()
		return nil, fmt.Errorf("%w (%d)", ErrTooMany, r.cfg.MaxViewers)
	}
	if owner != "" && r.owners[owner] >= r.cfg.MaxPerOwner {
		r.mu.Unlock()
		r.sessionsCtr.WithLabelValues("refused").Inc()
		return nil, fmt.Errorf("%w (%d)", ErrOwnerLimit, r.cfg.MaxPerOwner)
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
	r.pending++
	r.owners[owner]++
	r.mu.Unlock()
	release := func() {
		r.mu.Lock()
		cs.refs--
		r.pending--
		r.disown(owner)
		r.mu.Unlock()
		r.maybeStop(cs)
	}

	codec, params, err := cs.waitCodec(ctx, 3*time.Second)
	if err != nil {
		release()
		return nil, err
	}
	v, answer, err := r.newViewer(cs, codec, params, offer, t0, owner)
	if err != nil {
		release()
		return nil, err
	}
	r.mu.Lock()
	cs.refs--
	r.pending--
	if v.closing.Load() {
		// The peer failed while the answer was made: end ran before the session was registered,
		// so the owner's slot is given back here.
		r.disown(owner)
		r.mu.Unlock()
		r.maybeStop(cs)
		return nil, ErrPeerGone
	}
	r.sessions[v.id] = v
	r.mu.Unlock()
	r.viewersGauge.WithLabelValues(camera).Inc()
	cs.join(v)
	return &Session{ID: v.id, Answer: answer}, nil
}

// disown returns an owner's slot; held under r.mu.
func (r *Relay) disown(owner string) {
	if r.owners[owner]--; r.owners[owner] <= 0 {
		delete(r.owners, owner)
	}
}

// CloseOwner ends every session of owner (a revoked principal's); it returns how many.
func (r *Relay) CloseOwner(owner string) int {
	r.mu.Lock()
	var vs []*viewer
	for _, v := range r.sessions {
		if v.owner == owner {
			vs = append(vs, v)
		}
	}
	r.mu.Unlock()
	for _, v := range vs {
		r.end(v, "revoked")
	}
	return len(vs)
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

func (r *Relay) newViewer(cs *camSession, codec streams.Codec, fmtp, offer string, t0 time.Time, owner string) (*viewer, string, error) {
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
		pc.GracefulClose()
		return nil, "", err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		pc.GracefulClose()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.GracefulClose()
		return nil, "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if !offersCodec(offer, mime) {
		pc.GracefulClose()
		name := "H.264"
		if codec == streams.H265 {
			name = "H.265"
		}
		return nil, "", fmt.Errorf("%w: camera %s sends %s and this browser does not offer %s over WebRTC (Safari and Chrome or Edge with hardware H.265 decoding do); its recorded footage plays as MP4",
			ErrCodec, cs.camera, name, name)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.GracefulClose()
		return nil, "", fmt.Errorf("%w: %v", ErrCodec, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		pc.GracefulClose()
		return nil, "", err
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	v := &viewer{id: hex.EncodeToString(b[:]), owner: owner, cam: cs, pc: pc, track: track, offered: t0,
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
	if _, ok := r.sessions[v.id]; ok {
		delete(r.sessions, v.id)
		r.disown(v.owner)
	}
	r.mu.Unlock()
	v.cam.leave(v)
	_ = v.pc.GracefulClose() // waits for pion's goroutines: none outlive the session
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
