package camsim

import (
	"net"
	"sync"
)

// A camera writes a frame's RTP packets back to back; the server library writes each
// interleaved packet with its own write call. frameWriter gathers a frame's packets and sends
// them in one write, as a camera's TCP stack would put them on the wire: a 720p frame of six
// packets costs one system call here instead of six, and the reader can take it in one read.
// camsim shares the bench machine with vigil, so what it spends on system calls is taken from
// the node under test (real cameras are other machines).

// coalesceMax bounds what a connection holds before writing (a key frame goes out in parts).
const coalesceMax = 32 << 10

// coalescingListen is gortsplib.Server.Listen: net.Listen whose connections gather frames.
func coalescingListen(network, address string) (net.Listener, error) {
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return coalescingListener{l}, nil
}

type coalescingListener struct{ net.Listener }

func (l coalescingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frameWriter{Conn: c}, nil
}

// frameWriter holds interleaved RTP packets until a frame's last one (the RTP marker bit; RTCP
// packets, whose type byte has the same bit set, go at once) or until coalesceMax bytes are
// held. Anything that is not an interleaved packet (an RTSP response, TLS) flushes what is
// held and goes through as it is.
type frameWriter struct {
	net.Conn
	mu   sync.Mutex // responses and packets are written from different goroutines
	held []byte
}

func (w *frameWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(b) < 6 || b[0] != '$' {
		if err := w.flush(); err != nil {
			return 0, err
		}
		return w.Conn.Write(b)
	}
	w.held = append(w.held, b...)
	if b[5]&0x80 != 0 || len(w.held) >= coalesceMax {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func (w *frameWriter) flush() error {
	if len(w.held) == 0 {
		return nil
	}
	_, err := w.Conn.Write(w.held)
	w.held = w.held[:0]
	return err
}
