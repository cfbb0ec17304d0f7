// Package streams owns the media path of one camera after it arrives: access units, the
// single-writer Stream that fans a camera out to N readers through bounded lossy queues, and the
// depacketizer that turns RTP into access units. Sessions live in streams/rtsp, decoding in
// streams/decode.
package streams

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Codec names a video codec.
type Codec string

// Supported codecs.
const (
	H264 Codec = "H264"
	H265 Codec = "H265"
)

// Unit is one access unit (one picture). It is immutable once written to a Stream: every
// reader sees the same value, so nobody may modify NALUs.
type Unit struct {
	Codec Codec
	// PTS is the presentation time in the camera's clock, relative to the session's start.
	PTS time.Duration
	// Arrival is when the last packet of the unit arrived.
	Arrival time.Time
	// Capture is when the camera took the picture, by its clock, from the RTCP sender reports
	// (zero until the first report). A camera stamps its main and sub-streams from one clock, so
	// it pairs their frames.
	Capture time.Time
	// NALUs without start codes. A key unit carries its parameter sets in front.
	NALUs [][]byte
	// Key is true for a random access point (H.264 IDR, H.265 IRAP) that a decoder can start on.
	Key bool
}

// Size is the payload size in bytes.
func (u *Unit) Size() int {
	n := 0
	for _, b := range u.NALUs {
		n += len(b)
	}
	return n
}

// ErrClosed is returned by Read after the reader or the stream is closed.
var ErrClosed = errors.New("streams: reader closed")

// Stream fans the units of one camera out to readers. Write is called by one goroutine (the
// RTSP callback) and never blocks: a reader whose queue is full loses the unit and then skips
// everything up to the next key unit, so it never decodes a broken reference chain.
type Stream struct {
	mu      sync.RWMutex // guards readers; Write holds it for reading only
	readers map[*Reader]struct{}
	closed  bool

	units atomic.Uint64
	bytes atomic.Uint64
	// Rates over the last full window, written by the writer, read by anyone.
	fps      atomic.Uint64 // ×1000
	bps      atomic.Uint64
	lastKey  atomic.Int64  // unix nanoseconds
	winStart time.Duration // writer-owned: the rate window's start, in stream time
	winOpen  bool
	winLen   time.Duration
	winUnits uint64
	winBytes uint64
	ptsSeen  bool      // the stream has timestamps (else arrival times stand in)
	epoch    time.Time // arrival origin, for streams without timestamps

	// GOP cache (KeepGOP): the units since the last key unit, written under mu.RLock by the one
	// writer, read under mu.Lock by NewReaderWithGOP.
	gopMax      int
	gopMaxBytes int
	gop         []*Unit
	gopBytes    int
}

// KeepGOP makes the stream keep the units since the last key unit, up to maxUnits and maxBytes
// (a longer GOP is not kept), so that a new reader can start at once (NewReaderWithGOP) instead
// of waiting for the camera's next key unit. Call before the first Write.
func (s *Stream) KeepGOP(maxUnits, maxBytes int) {
	s.mu.Lock()
	s.gopMax, s.gopMaxBytes = maxUnits, maxBytes
	s.mu.Unlock()
}

// NewStream returns an empty stream.
func NewStream() *Stream {
	return &Stream{readers: map[*Reader]struct{}{}}
}

// Write offers u to every reader without blocking.
func (s *Stream) Write(u *Unit) {
	size := uint64(u.Size())
	s.units.Add(1)
	s.bytes.Add(size)
	s.account(u, size)

	s.mu.RLock()
	if s.gopMax > 0 {
		switch {
		case u.Key:
			clear(s.gop)
			s.gop, s.gopBytes = append(s.gop[:0], u), int(size)
		case len(s.gop) > 0 && len(s.gop) < s.gopMax && s.gopBytes+int(size) <= s.gopMaxBytes:
			s.gop = append(s.gop, u)
			s.gopBytes += int(size)
		default: // too long a GOP to keep
			clear(s.gop)
			s.gop, s.gopBytes = s.gop[:0], 0
		}
	}
	for r := range s.readers {
		r.offer(u)
	}
	s.mu.RUnlock()
}

// The rates are measured over stream time (the units' timestamps), not arrival: a steady 25 fps
// camera whose packets come in bursts reads 25, not 8.8 one second and 50 the next. The first
// reading comes after rateFirst, then each covers rateWindow.
const (
	rateFirst  = time.Second
	rateWindow = 5 * time.Second
	// rateJump is a timestamp discontinuity (a camera restarted its clock, a looped source): the
	// window starts again.
	rateJump = 30 * time.Second
)

func (s *Stream) account(u *Unit, size uint64) {
	now := u.Arrival
	if now.IsZero() {
		now = time.Now()
	}
	if u.Key {
		s.lastKey.Store(now.UnixNano())
	}
	if s.epoch.IsZero() {
		s.epoch = now
	}
	s.ptsSeen = s.ptsSeen || u.PTS != 0
	t := u.PTS
	if !s.ptsSeen {
		t = now.Sub(s.epoch)
	}
	// Reordered frames (B-frames) may step back a little; a bigger step is a new clock.
	if !s.winOpen || t < s.winStart-time.Second || t-s.winStart > rateJump {
		if !s.winOpen {
			s.winLen = rateFirst
		}
		s.winStart, s.winOpen, s.winUnits, s.winBytes = t, true, 1, size
		return
	}
	if el := t - s.winStart; el >= s.winLen {
		s.fps.Store(uint64(float64(s.winUnits) * 1000 / el.Seconds()))
		s.bps.Store(uint64(float64(s.winBytes) * 8 / el.Seconds()))
		s.winStart, s.winUnits, s.winBytes, s.winLen = t, 0, 0, rateWindow
	}
	s.winUnits++
	s.winBytes += size
}

// Stats is a snapshot of a stream's counters.
type Stats struct {
	Units       uint64
	Bytes       uint64
	FPS         float64
	Bitrate     uint64 // bits per second
	LastKey     time.Time
	Readers     int
	ReaderDrops uint64 // units readers lost, summed over current readers
}

// Stats returns the current counters.
func (s *Stream) Stats() Stats {
	st := Stats{
		Units:   s.units.Load(),
		Bytes:   s.bytes.Load(),
		FPS:     float64(s.fps.Load()) / 1000,
		Bitrate: s.bps.Load(),
	}
	if k := s.lastKey.Load(); k != 0 {
		st.LastKey = time.Unix(0, k)
	}
	s.mu.RLock()
	st.Readers = len(s.readers)
	for r := range s.readers {
		st.ReaderDrops += r.Dropped()
	}
	s.mu.RUnlock()
	return st
}

// ResetRates clears fps and bitrate, for a session that went down.
func (s *Stream) ResetRates() {
	s.fps.Store(0)
	s.bps.Store(0)
}

// NewReader attaches a reader that may lag by up to size units. name labels its drops.
func (s *Stream) NewReader(name string, size int) *Reader {
	if size < 1 {
		size = 1
	}
	r := &Reader{name: name, stream: s, ch: make(chan *Unit, size), done: make(chan struct{})}
	r.waitKey.Store(true) // a new reader starts on a key unit
	s.mu.Lock()
	if s.closed {
		r.closeOnce.Do(func() { close(r.done) })
	} else {
		s.readers[r] = struct{}{}
	}
	s.mu.Unlock()
	return r
}

// NewReaderWithGOP attaches a reader and returns the kept GOP (see KeepGOP) it continues from:
// the reader's first unit follows the GOP's last. Without a GOP the reader starts at the next
// key unit, as NewReader's do.
func (s *Stream) NewReaderWithGOP(name string, size int) (*Reader, []*Unit) {
	if size < 1 {
		size = 1
	}
	r := &Reader{name: name, stream: s, ch: make(chan *Unit, size), done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	gop := append([]*Unit(nil), s.gop...)
	if len(gop) > 0 {
		r.started.Store(true)
	} else {
		r.waitKey.Store(true)
	}
	if s.closed {
		r.closeOnce.Do(func() { close(r.done) })
	} else {
		s.readers[r] = struct{}{}
	}
	return r, gop
}

// Close detaches every reader; their Read returns ErrClosed.
func (s *Stream) Close() {
	s.mu.Lock()
	s.closed = true
	rs := s.readers
	s.readers = map[*Reader]struct{}{}
	s.mu.Unlock()
	for r := range rs {
		r.closeOnce.Do(func() { close(r.done) })
	}
}

// Reader is one consumer of a Stream with its own bounded queue.
type Reader struct {
	name      string
	stream    *Stream
	ch        chan *Unit
	done      chan struct{}
	closeOnce sync.Once
	waitKey   atomic.Bool // writer-side: drop until the next key unit
	started   atomic.Bool // the first key unit was delivered; earlier units are not losses
	dropped   atomic.Uint64
	overflows atomic.Uint64
}

// Name is the label given at creation.
func (r *Reader) Name() string { return r.name }

func (r *Reader) offer(u *Unit) {
	if r.waitKey.Load() {
		if !u.Key {
			if r.started.Load() {
				r.dropped.Add(1)
			}
			return
		}
		r.waitKey.Store(false)
		r.started.Store(true)
	}
	select {
	case r.ch <- u:
	default:
		// Full: this unit and everything up to the next key unit is lost for this reader only.
		r.dropped.Add(1)
		r.overflows.Add(1)
		r.waitKey.Store(true)
	}
}

// Read returns the next unit, blocking until one arrives, ctx ends or the reader closes.
func (r *Reader) Read(ctx context.Context) (*Unit, error) {
	select {
	case u := <-r.ch:
		return u, nil
	default:
	}
	select {
	case u := <-r.ch:
		return u, nil
	case <-r.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Units is the reader's queue, for a consumer that waits on other things too. Unlike Read, a
// select on Units and Done may see Done while units are still queued: such a consumer should
// keep taking from Units after Done (nothing is queued after it).
func (r *Reader) Units() <-chan *Unit { return r.ch }

// Done is closed when the reader closes (Close, or the stream's Close).
func (r *Reader) Done() <-chan struct{} { return r.done }

// Dropped counts units this reader lost: on overflow and after it until the next key unit.
// Units before the reader's first key unit are skipped, not lost.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Overflows counts how often the queue was full.
func (r *Reader) Overflows() uint64 { return r.overflows.Load() }

// Close detaches the reader from its stream.
func (r *Reader) Close() {
	r.stream.mu.Lock()
	delete(r.stream.readers, r)
	r.stream.mu.Unlock()
	r.closeOnce.Do(func() { close(r.done) })
}
