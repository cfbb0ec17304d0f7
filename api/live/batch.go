package live

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the relay's shared UDP socket with writes gathered into sendmmsg calls: every
// session's packets (SRTP, STUN, DTLS) are copied into a queue that one goroutine drains in
// batches of up to 64. Sending a key frame to hundreds of viewers is then a few hundred system
// calls instead of tens of thousands. Reads pass straight through. A write reports success once
// queued; UDP promises no more, and failures are counted.
type batchConn struct {
	*net.UDPConn
	v4 *ipv4.PacketConn
	v6 *ipv6.PacketConn

	mu      sync.Mutex
	pending []ipv4.Message
	bufPtrs []*[]byte // pending[i]'s buffer, to return to the pool
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	bufs    sync.Pool

	sent, failed, dropped atomic.Int64
}

const (
	batchSize    = 64
	maxPending   = 16384 // packets; beyond this new writes are dropped (counted)
	batchBufSize = 1500
)

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{UDPConn: c, wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil && !a.IP.IsUnspecified() {
		b.v6 = ipv6.NewPacketConn(c)
	} else {
		b.v4 = ipv4.NewPacketConn(c)
	}
	b.bufs.New = func() any { buf := make([]byte, batchBufSize); return &buf }
	go b.run()
	return b
}

func (b *batchConn) queue(p []byte, addr net.Addr) (int, error) {
	if len(p) > batchBufSize {
		return b.UDPConn.WriteTo(p, addr) // rare: larger than any RTP packet vigil makes
	}
	ptr := b.bufs.Get().(*[]byte)
	buf := (*ptr)[:len(p)]
	copy(buf, p)
	b.mu.Lock()
	if len(b.pending) >= maxPending {
		b.mu.Unlock()
		b.bufs.Put(ptr)
		b.dropped.Add(1)
		return len(p), nil
	}
	b.pending = append(b.pending, ipv4.Message{Buffers: [][]byte{buf}, Addr: addr})
	b.bufPtrs = append(b.bufPtrs, ptr)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// WriteTo queues p for addr.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) { return b.queue(p, addr) }

// WriteToUDP queues p for addr.
func (b *batchConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) { return b.queue(p, addr) }

// WriteToUDPAddrPort queues p for addr.
func (b *batchConn) WriteToUDPAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	return b.queue(p, net.UDPAddrFromAddrPort(addr))
}

func (b *batchConn) run() {
	defer close(b.stopped)
	var batch []ipv4.Message
	var ptrs []*[]byte
	for {
		select {
		case <-b.wake:
		case <-b.done:
			return
		}
		for {
			b.mu.Lock()
			batch, b.pending = b.pending, batch[:0]
			ptrs, b.bufPtrs = b.bufPtrs, ptrs[:0]
			b.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i := 0; i < len(batch); i += batchSize {
				b.write(batch[i:min(i+batchSize, len(batch))])
			}
			for i := range batch {
				b.bufs.Put(ptrs[i])
				batch[i], ptrs[i] = ipv4.Message{}, nil
			}
			batch, ptrs = batch[:0], ptrs[:0]
		}
	}
}

// write sends msgs, retrying the remainder of a partial sendmmsg; a message the kernel refuses
// is counted and skipped.
func (b *batchConn) write(msgs []ipv4.Message) {
	for len(msgs) > 0 {
		var n int
		var err error
		if b.v4 != nil {
			n, err = b.v4.WriteBatch(msgs, 0)
		} else {
			n, err = b.v6.WriteBatch(msgs, 0)
		}
		if err != nil || n == 0 {
			b.failed.Add(1)
			n = max(n, 1)
		}
		b.sent.Add(int64(n))
		msgs = msgs[n:]
	}
}

// Close stops the writer and closes the socket.
func (b *batchConn) Close() error {
	select {
	case <-b.done:
	default:
		close(b.done)
	}
	<-b.stopped
	return b.UDPConn.Close()
}

// ReadFromAddrPort reads from the socket (pion's mux prefers the allocation-free form).
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.UDPConn.ReadFromUDPAddrPort(p)
}

// WriteToAddrPort queues p for addr.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	return b.queue(p, net.UDPAddrFromAddrPort(addr))
}
