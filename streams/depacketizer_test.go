package streams

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// A real SPS/PPS pair from libx264 (320x240, Main profile).
var (
	testSPS, _ = hex.DecodeString("674d400dd90141fb011000000300100000030320f142a480")
	testPPS, _ = hex.DecodeString("68ebc3cb20")
)

func packets(t testing.TB, au [][]byte) []*rtp.Packet {
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	enc, err := f.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := enc.Encode(au)
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}

func feed(d *Depacketizer, pkts []*rtp.Packet) []*Unit {
	var out []*Unit
	for _, p := range pkts {
		if u := d.Decode(p, 0, time.Now()); u != nil {
			out = append(out, u)
		}
	}
	return out
}

func bigSlice(typ byte, n int) []byte {
	b := make([]byte, n)
	b[0] = typ
	for i := 1; i < n; i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func TestDepacketizerTable(t *testing.T) {
	idr := bigSlice(0x65, 5000) // fragmented into FU-A
	delta := bigSlice(0x41, 300)
	cases := []struct {
		name      string
		sdpSPS    []byte
		au        [][]byte
		wantUnit  bool
		wantKey   bool
		wantNALUs int
		wantErr   string
		wantW     int
	}{
		{"idr with in-band params", nil, [][]byte{testSPS, testPPS, idr}, true, true, 3, "", 320},
		{"idr with SDP params only", testSPS, [][]byte{idr}, true, true, 3, "", 320},
		{"idr without any params is not a key", nil, [][]byte{idr}, true, false, 1, "", 0},
		{"delta", testSPS, [][]byte{delta}, true, false, 1, "", 320},
		{"aud is stripped", testSPS, [][]byte{{0x09, 0xf0}, delta}, true, false, 1, "", 320},
		{"params only: no unit", nil, [][]byte{testSPS, testPPS}, false, false, 0, "", 320},
		{"sei only: empty", nil, [][]byte{{0x06, 0x05, 0x01, 0x00, 0x80}}, false, false, 0, "empty", 0},
		{"garbage SPS is refused", nil, [][]byte{{0x67, 0xff, 0xff}, testPPS, idr}, true, false, 1, "sps", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pps := []byte(nil)
			if tc.sdpSPS != nil {
				pps = testPPS
			}
			d, err := NewDepacketizer(H264, nil, tc.sdpSPS, pps)
			if err != nil {
				t.Fatal(err)
			}
			units := feed(d, packets(t, tc.au))
			// A unit is complete at the marker bit.
			if tc.wantUnit != (len(units) == 1) {
				t.Fatalf("units %d, want unit=%v (errors %v)", len(units), tc.wantUnit, d.Errors)
			}
			if tc.wantUnit {
				if units[0].Key != tc.wantKey || len(units[0].NALUs) != tc.wantNALUs {
					t.Fatalf("key=%v nalus=%d, want %v %d", units[0].Key, len(units[0].NALUs), tc.wantKey, tc.wantNALUs)
				}
			}
			counts := map[string]uint64{"rtp": d.Errors.RTP, "sps": d.Errors.SPS, "empty": d.Errors.Empty}
			if tc.wantErr != "" && counts[tc.wantErr] == 0 {
				t.Fatalf("errors %v, want a %q error", d.Errors, tc.wantErr)
			}
			if w, _ := d.Size(); w != tc.wantW {
				t.Fatalf("width %d, want %d", w, tc.wantW)
			}
		})
	}
}

func TestDepacketizerLossAndTruncation(t *testing.T) {
	d, _ := NewDepacketizer(H264, nil, testSPS, testPPS)
	pkts := packets(t, [][]byte{bigSlice(0x65, 6000)})
	if len(pkts) < 3 {
		t.Fatalf("expected fragmentation, got %d packets", len(pkts))
	}
	// Lose a middle fragment: the unit must not come out half-assembled.
	lossy := append([]*rtp.Packet{}, pkts[0])
	lossy = append(lossy, pkts[2:]...)
	for _, p := range lossy {
		if u := d.Decode(p, 0, time.Now()); u != nil && len(u.NALUs[len(u.NALUs)-1]) == 6000 {
			t.Fatal("a unit with a lost fragment was assembled as complete")
		}
	}
	// Truncated payloads are errors, never panics.
	for _, p := range pkts {
		q := *p
		q.Payload = q.Payload[:1]
		d.Decode(&q, 0, time.Now())
	}
	// And the depacketizer recovers on the next good unit.
	units := feed(d, packets(t, [][]byte{bigSlice(0x65, 6000)}))
	if len(units) != 1 || !units[0].Key {
		t.Fatalf("did not recover: %d units, errors %v", len(units), d.Errors)
	}
}

func TestDepacketizerRejectsOtherCodecs(t *testing.T) {
	if _, err := NewDepacketizer("MJPEG", nil, nil, nil); err == nil {
		t.Fatal("MJPEG accepted")
	}
}

// FuzzDepacketizer feeds arbitrary payloads; seeded from the table's packets.
func FuzzDepacketizer(f *testing.F) {
	for _, au := range [][][]byte{
		{testSPS, testPPS, bigSlice(0x65, 3000)},
		{bigSlice(0x41, 200)},
		{{0x09, 0xf0}, bigSlice(0x41, 50)},
	} {
		for _, p := range packets(f, au) {
			b, _ := p.Marshal()
			f.Add(b)
		}
	}
	f.Add([]byte{0x80, 0xe0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x7c, 0x85})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, codec := range []Codec{H264, H265} {
			d, _ := NewDepacketizer(codec, nil, nil, nil)
			var p rtp.Packet
			if err := p.Unmarshal(data); err != nil {
				return
			}
			for i := 0; i < 3; i++ { // repeated to exercise fragment state
				if u := d.Decode(&p, 0, time.Now()); u != nil {
					if u.Size() == 0 && len(u.NALUs) > 0 {
						t.Fatal("unit with empty NAL units")
					}
				}
			}
		}
	})
}
