package live

import (
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// A viewer: its bounded queue and writer (lossy to the next key frame), and the NACK responder
// that resends from the packets it already shares, within a budget.

// viewer is one WebRTC session.
type viewer struct {
	id      string
	owner   string // the principal who opened it
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
