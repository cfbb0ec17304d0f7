package camsim

import (
	"bytes"
	"encoding/binary"
	"time"
)

// seiUUID marks camsim's send-time SEI message (user data unregistered).
var seiUUID = []byte("vigil-camsim-tim")

// TimeSEI is an H.264 SEI NAL unit (user data unregistered) carrying t, with emulation
// prevention: camsim puts one in front of every frame when Config.Timestamps is on, so a viewer
// can measure the latency from camsim's send to its receipt.
func TimeSEI(t time.Time) []byte {
	var rbsp []byte
	rbsp = append(rbsp, 5, 24) // payload type 5, size 16 + 8
	rbsp = append(rbsp, seiUUID...)
	rbsp = binary.BigEndian.AppendUint64(rbsp, uint64(t.UnixNano()))
	rbsp = append(rbsp, 0x80) // rbsp trailing bits
	out := []byte{0x06}
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// ParseTimeSEI reads the time from a NAL unit made by TimeSEI.
func ParseTimeSEI(nalu []byte) (time.Time, bool) {
	if len(nalu) < 2 || nalu[0]&0x1f != 6 {
		return time.Time{}, false
	}
	rbsp := make([]byte, 0, len(nalu))
	zeros := 0
	for _, b := range nalu[1:] {
		if zeros >= 2 && b == 3 {
			zeros = 0
			continue
		}
		rbsp = append(rbsp, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	if len(rbsp) < 2+24 || rbsp[0] != 5 || rbsp[1] != 24 || !bytes.Equal(rbsp[2:18], seiUUID) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(rbsp[18:26]))), true
}
