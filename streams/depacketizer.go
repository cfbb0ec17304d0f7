package streams

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// Depacketizer assembles RTP packets of one H.264 or H.265 track into access units. It keeps
// the latest parameter sets (from the SDP or in band) and puts them in front of every key unit,
// so any reader can start decoding at any key unit. It is owned by one goroutine.
type Depacketizer struct {
	codec Codec
	h264  *rtph264.Decoder
	h265  *rtph265.Decoder
	vps   []byte
	sps   []byte
	pps   []byte

	width, height int
	// Errors counts malformed input by kind.
	Errors DepacketizerErrors
	// LastError is the most recent malformed-input error.
	LastError error
}

// DepacketizerErrors counts malformed input by kind.
type DepacketizerErrors struct {
	RTP   uint64 // packets the depacketizer refused (bad fragmentation, truncated headers)
	SPS   uint64 // parameter sets that do not parse or give an impossible picture size
	Empty uint64 // access units without a picture
}

// Total is the sum of all kinds.
func (e DepacketizerErrors) Total() uint64 { return e.RTP + e.SPS + e.Empty }

// ErrNotVideo means the codec is not one vigil handles.
var ErrNotVideo = errors.New("streams: codec is neither H.264 nor H.265")

// NewDepacketizer returns a depacketizer for codec with optional parameter sets from the SDP
// (vps is ignored for H.264).
func NewDepacketizer(codec Codec, vps, sps, pps []byte) (*Depacketizer, error) {
	d := &Depacketizer{codec: codec}
	switch codec {
	case H264:
		d.h264 = &rtph264.Decoder{}
		if err := d.h264.Init(); err != nil {
			return nil, err
		}
	case H265:
		d.h265 = &rtph265.Decoder{}
		if err := d.h265.Init(); err != nil {
			return nil, err
		}
	default:
		return nil, ErrNotVideo
	}
	d.vps = vps
	if sps != nil {
		d.setSPS(sps)
	}
	d.pps = pps
	return d, nil
}

// Size returns the picture size from the last valid SPS (0, 0 before one was seen).
func (d *Depacketizer) Size() (w, h int) { return d.width, d.height }

// Decode takes one packet and returns a complete unit, or nil when more packets are needed or
// the packet was malformed (counted in Errors).
func (d *Depacketizer) Decode(pkt *rtp.Packet, pts time.Duration, arrival time.Time) *Unit {
	var nalus [][]byte
	var err error
	if d.h264 != nil {
		nalus, err = d.h264.Decode(pkt)
		if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
			return nil
		}
	} else {
		nalus, err = d.h265.Decode(pkt)
		if errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
			return nil
		}
	}
	if err != nil {
		d.fail("rtp", err)
		return nil
	}
	u := d.assemble(nalus, pts, arrival)
	if u != nil && u.Key {
		d.renew()
	}
	return u
}

// renew replaces the RTP decoder after a complete key unit. gortsplib's decoders keep their
// fragment slice's backing array between units, which pins every packet of the largest
// fragmented NAL unit seen (a key frame: ~100 KB per camera at 1.5 Mb/s). Between units the
// decoder holds no state we need, so a fresh one costs a small allocation per GOP.
func (d *Depacketizer) renew() {
	if d.h264 != nil {
		d.h264 = &rtph264.Decoder{}
		_ = d.h264.Init()
	} else {
		d.h265 = &rtph265.Decoder{}
		_ = d.h265.Init()
	}
}

func (d *Depacketizer) fail(kind string, err error) {
	switch kind {
	case "rtp":
		d.Errors.RTP++
	case "sps":
		d.Errors.SPS++
	default:
		d.Errors.Empty++
	}
	d.LastError = fmt.Errorf("%s: %w", kind, err)
}

// assemble filters NAL units, tracks parameter sets and marks key units.
func (d *Depacketizer) assemble(nalus [][]byte, pts time.Duration, arrival time.Time) *Unit {
	out := make([][]byte, 0, len(nalus)+3)
	key, picture := false, false
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		if d.h264 != nil {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				d.setSPS(n)
				continue
			case h264.NALUTypePPS:
				d.pps = n
				continue
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			case h264.NALUTypeIDR:
				key, picture = true, true
			case h264.NALUTypeNonIDR, h264.NALUTypeDataPartitionA:
				picture = true
			}
		} else {
			if len(n) < 2 {
				d.fail("rtp", errors.New("H.265 NAL unit shorter than its header"))
				return nil
			}
			switch t := h265.NALUType((n[0] >> 1) & 0x3f); t {
			case h265.NALUType_VPS_NUT:
				d.vps = n
				continue
			case h265.NALUType_SPS_NUT:
				d.setSPS(n)
				continue
			case h265.NALUType_PPS_NUT:
				d.pps = n
				continue
			case h265.NALUType_AUD_NUT:
				continue
			default:
				if t <= 31 {
					picture = true
					if t >= h265.NALUType_BLA_W_LP && t <= 23 {
						key = true
					}
				}
			}
		}
		out = append(out, n)
	}
	if !picture {
		if len(out) > 0 {
			d.fail("empty", errors.New("access unit without a picture"))
		}
		return nil
	}
	if key {
		if d.sps == nil || d.pps == nil || (d.h265 != nil && d.vps == nil) {
			// A key picture without parameter sets cannot start a decoder: treat it as a delta.
			key = false
		} else {
			params := [][]byte{d.sps, d.pps}
			if d.h265 != nil {
				params = [][]byte{d.vps, d.sps, d.pps}
			}
			out = append(params, out...)
		}
	}
	return &Unit{Codec: d.codec, PTS: pts, Arrival: arrival, NALUs: out, Key: key}
}

func (d *Depacketizer) setSPS(n []byte) {
	var w, h int
	if d.h264 != nil {
		var s h264.SPS
		if err := s.Unmarshal(n); err != nil {
			d.fail("sps", err)
			return
		}
		w, h = s.Width(), s.Height()
	} else {
		var s h265.SPS
		if err := s.Unmarshal(n); err != nil {
			d.fail("sps", err)
			return
		}
		w, h = s.Width(), s.Height()
	}
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		d.fail("sps", fmt.Errorf("picture size %dx%d out of range", w, h))
		return
	}
	d.sps, d.width, d.height = n, w, h
}
