package live

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"

	"github.com/vigil-oss/vigil/streams"
)

// A camera session: one reader of a camera's stream for all its viewers, packetized once, with
// the current GOP kept so that a new viewer starts at once.

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
