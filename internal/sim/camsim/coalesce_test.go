package camsim

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// recordConn is a net.Conn that keeps each write apart.
type recordConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(b))
	return len(b), nil
}

// interleaved is an RTSP interleaved RTP packet on channel 0 with the marker bit as given.
func interleaved(marker bool, payload int) []byte {
	b := make([]byte, 4+12+payload)
	b[0], b[1], b[2], b[3] = '$', 0, byte((12+payload)>>8), byte(12+payload)
	b[4], b[5] = 0x80, 96
	if marker {
		b[5] |= 0x80
	}
	return b
}

// A frame's packets leave in one write at its last packet; RTCP and RTSP responses at once, after
// what was held; a large frame in parts of at most coalesceMax (plus one packet).
func TestFrameWriterOneWritePerFrame(t *testing.T) {
	rc := &recordConn{}
	w := &frameWriter{Conn: rc}
	var frame []byte
	for i := range 6 {
		p := interleaved(i == 5, 1400)
		frame = append(frame, p...)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if got := len(rc.writes); i < 5 && got != 0 {
			t.Fatalf("packet %d of 6 was written before the frame's end (%d writes)", i+1, got)
		}
	}
	if len(rc.writes) != 1 || !bytes.Equal(rc.writes[0], frame) {
		t.Fatalf("a 6-packet frame went out in %d writes, want 1 holding the 6 packets in order", len(rc.writes))
	}

	// A packet held, then an RTSP response: the packet first, then the response, unchanged.
	held := interleaved(false, 100)
	w.Write(held)
	resp := []byte("RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n")
	w.Write(resp)
	if len(rc.writes) != 3 || !bytes.Equal(rc.writes[1], held) || !bytes.Equal(rc.writes[2], resp) {
		t.Fatalf("a response after a held packet: writes %d, want the packet then the response", len(rc.writes))
	}

	// RTCP (a sender report: packet type 200) goes at once.
	sr := interleaved(false, 16)
	sr[1], sr[5] = 1, 200
	w.Write(sr)
	if len(rc.writes) != 4 {
		t.Fatalf("an RTCP packet was held (%d writes)", len(rc.writes))
	}

	// A key frame of 100 packets: no write holds more than coalesceMax plus one packet.
	before := len(rc.writes)
	total := 0
	for i := range 100 {
		p := interleaved(i == 99, 1400)
		total += len(p)
		w.Write(p)
	}
	sent := 0
	for _, b := range rc.writes[before:] {
		if len(b) > coalesceMax+1416 {
			t.Fatalf("a write of %d bytes, over %d", len(b), coalesceMax+1416)
		}
		sent += len(b)
	}
	if sent != total || len(rc.writes)-before < 4 {
		t.Fatalf("a 100-packet key frame: %d of %d bytes in %d writes", sent, total, len(rc.writes)-before)
	}
}
