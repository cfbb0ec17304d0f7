package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/decode"
)

// Picture is a decoded frame in Go memory (BGR, W×H), safe to share between goroutines.
type Picture struct {
	W, H int
	BGR  []byte
}

// moment says when a picture was taken: the camera's capture time when the stream carries one,
// and its arrival here.
type moment struct{ capture, arrival time.Time }

func momentOf(u *streams.Unit) moment { return moment{capture: u.Capture, arrival: u.Arrival} }

// sub is how far u was taken after m: by capture times when both have them (a camera stamps its
// streams from one clock), else by arrival.
func (m moment) sub(u *streams.Unit) time.Duration {
	if !m.capture.IsZero() && !u.Capture.IsZero() {
		return u.Capture.Sub(m.capture)
	}
	return u.Arrival.Sub(m.arrival)
}

// ErrNoShot means the main stream had no decodable frame near the wanted moment.
var ErrNoShot = errors.New("pipeline: no main-stream frame for the shot")

// Shot budgets: how long a request waits for the main stream to reach its moment, how far from
// it the nearest frame may be, and how much of the main stream is kept (units since the key
// frame before last, at most maxShotUnits and maxShotBytes: a camera that sends endless GOPs or
// huge frames costs a bounded buffer, not the node's memory).
const (
	shotWait     = 400 * time.Millisecond
	shotSlack    = 120 * time.Millisecond
	maxShotUnits = 400
	maxShotBytes = 16 << 20
)

// Decoding ahead. A door camera's frames each ask for a shot (2–2.5 a second while someone is at
// the door), and each shot decodes the main stream forward from its key frame or from the last
// shot: with a 1 s main GOP about ten frames, tens of milliseconds on the door frame's path.
// After a door shot the decoder keeps up with the main stream for aheadFor, a frame at a time as
// it arrives, so that the next door frame's shot decodes a frame or two. It stays aheadLag units
// behind the newest and aheadMargin before the moment the camera's analysis has reached (its
// sub-stream reader's last unit, shots.at): a shot may still be asked for any moment after that,
// and a decoder cannot step back. While someone waits at the door it decodes what the shots
// would have (every frame, against ten a shot at 2.5 shots a second), sooner; after the last
// door shot, aheadFor's worth more.
const (
	aheadFor    = time.Second
	aheadLag    = 1
	aheadMargin = 60 * time.Millisecond
)

// shots decodes a camera's main stream on demand. When the camera analyses a sub-stream, the
// best shots, embeddings and plate reads still come from the main stream's pictures: a worker
// that found something on a sub-stream frame asks for the main frame taken at the same moment.
// The main stream's units since the key frame before last are kept, undecoded; a request
// decodes forward from the key frame (or from where the last request left off in the same GOP)
// to the frame nearest its moment. A camera where nothing is found decodes nothing of its main
// stream. One goroutine (run) owns the buffer and the decoder.
type shots struct {
	camera  string
	stream  *streams.Stream
	mask    *privacy.Painter
	size    atomic.Uint64 // the main picture's width<<32 | height, as last decoded
	reqs    chan shotReq
	cpu     *cpuSlots // decodes wait for a core in the lane of the request
	metrics *Metrics
	// decoded and ahead are the camera's counters of main frames decoded and, of them, decoded
	// ahead (looked up once: they are counted a frame at a time).
	decoded, ahead prometheus.Counter
	log            *slog.Logger
	// at is the moment of the analysed stream's last unit read (nil: none yet, or not told):
	// decoding ahead stops aheadMargin before it.
	at atomic.Pointer[moment]
	// noAhead turns decoding ahead off (Config.NoDecodeAhead).
	noAhead bool
	// decided, when set, says every face in view at the camera has had its answer: its
	// passage is published, or it rests (a stranger). Nothing is decoded ahead then: the door
	// waits for no one, and the shots still asked for (a verification a second) are not urgent.
	decided func() bool
}

type shotReq struct {
	at       moment
	lane     int // cpuSlots lane of the decode
	deadline time.Time
	reply    chan shotReply // buffered: run never blocks on it
}

type shotReply struct {
	pic *Picture
	err error
}

func newShots(camera string, s *streams.Stream, mask *privacy.Painter, m *Metrics, log *slog.Logger) *shots {
	return &shots{camera: camera, stream: s, mask: mask, reqs: make(chan shotReq, 16), metrics: m, log: log,
		decoded: m.mainDecoded.WithLabelValues(camera), ahead: m.mainAhead.WithLabelValues(camera)}
}

// MainSize is the main stream's picture size as last decoded (0, 0 before the first).
func (s *shots) MainSize() (w, h int) {
	v := s.size.Load()
	return int(v >> 32), int(v & 0xffffffff)
}

// reached tells the shots that the camera's analysis has read up to the unit taken at m.
func (s *shots) reached(m moment) { s.at.Store(&m) }

// Shot returns the main-stream picture taken nearest to at, decoded in a CPU slot of lane.
func (s *shots) Shot(ctx context.Context, at moment, lane int) (*Picture, error) {
	t0 := time.Now()
	defer func() { s.metrics.shotWait.Observe(time.Since(t0).Seconds()) }()
	q := shotReq{at: at, lane: lane, deadline: time.Now().Add(shotWait), reply: make(chan shotReply, 1)}
	select {
	case s.reqs <- q:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-q.reply:
		return r.pic, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// shotState is run's: the buffered units and the decoder's place among them.
type shotState struct {
	buf   []*streams.Unit
	bytes int   // payload of buf
	base  int64 // absolute index of buf[0]
	dec   *decode.Decoder
	decAt int64    // absolute index of the unit last decoded; -1 none
	last  *Picture // the picture of decAt, when it was converted (nil after decoding ahead)
	// aheadUntil: decode ahead until then, in a CPU slot of aheadLane (the last door shot's).
	aheadUntil time.Time
	aheadLane  int
}

// run owns the buffer and the decoder. It wakes only for what it has to do: a unit of the main
// stream, a request, a waiting request's deadline, or the next frame to decode ahead. A camera
// where nothing is asked for costs a unit appended to its buffer and nothing else (no ticker:
// at 300 cameras one every 50 ms would wake the node 6,000 times a second for nothing).
func (s *shots) run(ctx context.Context) {
	r := s.stream.NewReader("shots", 256)
	defer r.Close()
	st := &shotState{decAt: -1}
	defer func() {
		if st.dec != nil {
			st.dec.Close()
		}
	}()
	units, closed := r.Units(), r.Done()
	var pending []shotReq
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var deadline <-chan time.Time // timer.C while requests wait, else nil
	now := make(chan struct{})
	close(now)
	var again <-chan struct{} // now while there is more to decode ahead, else nil
	for {
		select {
		case <-ctx.Done():
			for _, q := range pending {
				q.reply <- shotReply{err: ctx.Err()}
			}
			return
		case <-closed:
			// The camera's stream ended: what is buffered still serves. Units still queued
			// are taken as they come (nothing is written after a stream's Close).
			closed = nil
		case u := <-units:
			st.add(u)
		case q := <-s.reqs:
			pending = append(pending, q)
		case <-deadline:
		case <-again:
		}
		t := time.Now()
		keep := pending[:0]
		var first time.Time // when to wake without a unit or request: the earliest deadline of those still waiting
		for _, q := range pending {
			// Serve once the main stream has passed the moment, or at the deadline with what it has.
			if n := len(st.buf); n > 0 && q.at.sub(st.buf[n-1]) >= 0 || !t.Before(q.deadline) {
				pic, err := s.serve(st, q.at, q.lane)
				q.reply <- shotReply{pic: pic, err: err}
				continue
			}
			if first.IsZero() || q.deadline.Before(first) {
				first = q.deadline
			}
			keep = append(keep, q)
		}
		pending = keep
		again = nil
		if len(pending) == 0 && s.stepAhead(st) { // one frame at a time: a request waits for one
			again = now
		} else if st.dec != nil && t.Before(st.aheadUntil) && (first.IsZero() || t.Add(aheadRecheck).Before(first)) {
			// Decoding ahead may wait for the analysis to move on (shots.at) or for a face to
			// turn up undecided (shots.decided), neither of which sends anything here.
			first = t.Add(aheadRecheck)
		}
		deadline = nil
		if !first.IsZero() {
			timer.Reset(time.Until(first))
			deadline = timer.C
		}
	}
}

// aheadRecheck is how often decoding ahead looks again whether it may go on (see aheadOn), while
// no unit arrives, until aheadFor after the last door shot.
const aheadRecheck = 50 * time.Millisecond

// aheadOn reports whether the main stream is being decoded ahead (see aheadFor).
func (s *shots) aheadOn(st *shotState) bool {
	return st.dec != nil && time.Now().Before(st.aheadUntil) && (s.decided == nil || !s.decided())
}

// stepAhead decodes the next unit ahead of the shots (see aheadFor), if one may be, and reports
// whether it did (another may follow).
func (s *shots) stepAhead(st *shotState) bool {
	if !s.aheadOn(st) {
		return false
	}
	next, ok := st.nextAhead(s.at.Load())
	if !ok {
		return false
	}
	s.cpu.acquire(st.aheadLane)
	err := st.dec.Advance(st.buf[next])
	s.cpu.release()
	s.decoded.Inc()
	s.ahead.Inc()
	if err != nil {
		st.decAt, st.last = -1, nil
		return false
	}
	st.decAt, st.last = st.base+int64(next), nil
	return true
}

// nextAhead is the index in buf of the unit to decode ahead: the one after the last decoded, or
// the newest key frame when there is one after it (or nothing was decoded), if it is aheadLag
// units behind the newest and aheadMargin before the moment analysis has reached.
func (st *shotState) nextAhead(reached *moment) (int, bool) {
	newest := len(st.buf) - 1 - aheadLag
	next := -1
	if st.decAt >= st.base {
		next = int(st.decAt-st.base) + 1
	}
	for i := newest; i > next && i >= 0; i-- {
		if st.buf[i].Key {
			next = i
			break
		}
	}
	if next < 0 || next > newest {
		return 0, false
	}
	if reached == nil || reached.sub(st.buf[next]) > -aheadMargin {
		return 0, false
	}
	return next, true
}

// add buffers u, keeping the units since the key frame before last.
func (st *shotState) add(u *streams.Unit) {
	st.buf = append(st.buf, u)
	st.bytes += u.Size()
	if u.Key {
		keys := 0
		for i := len(st.buf) - 1; i > 0; i-- {
			if st.buf[i].Key {
				if keys++; keys == 2 {
					st.drop(i)
					break
				}
			}
		}
	}
	if len(st.buf) > maxShotUnits {
		st.drop(len(st.buf) - maxShotUnits)
	}
	n := 0
	for over := st.bytes - maxShotBytes; over > 0 && n < len(st.buf)-1; n++ {
		over -= st.buf[n].Size()
	}
	st.drop(n)
}

func (st *shotState) drop(n int) {
	for _, u := range st.buf[:n] {
		st.bytes -= u.Size()
	}
	clear(st.buf[:n])
	st.buf = st.buf[n:]
	st.base += int64(n)
	if st.decAt < st.base {
		st.decAt = -1
	}
}

// serve decodes the buffered frame nearest at; after a door camera's shot the main stream is
// decoded ahead for aheadFor.
func (s *shots) serve(st *shotState, at moment, lane int) (*Picture, error) {
	s.cpu.acquire(lane)
	pic, err := s.decodeNear(st, at, lane)
	s.cpu.release()
	if lane == laneDoor && !s.noAhead {
		st.aheadUntil, st.aheadLane = time.Now().Add(aheadFor), lane
	}
	result := "ok"
	if err != nil {
		result = "missed"
	}
	s.metrics.shots.WithLabelValues(s.camera, result).Inc()
	return pic, err
}

func (s *shots) decodeNear(st *shotState, at moment, lane int) (*Picture, error) {
	j := -1
	var best time.Duration
	for i, u := range st.buf {
		d := at.sub(u)
		if d < 0 {
			d = -d
		}
		if j < 0 || d < best {
			j, best = i, d
		}
	}
	if j < 0 || best > shotSlack {
		return nil, fmt.Errorf("%w (nearest %v away)", ErrNoShot, best)
	}
	abs := st.base + int64(j)
	if abs == st.decAt && st.last != nil {
		return st.last, nil
	}
	g := j
	for g >= 0 && !st.buf[g].Key {
		g--
	}
	if g < 0 {
		return nil, fmt.Errorf("%w (no key frame before it is kept)", ErrNoShot)
	}
	from := g
	if st.decAt >= st.base+int64(g) && st.decAt < abs {
		from = int(st.decAt-st.base) + 1 // forward in the same GOP from where the last shot left off
	}
	if st.dec == nil {
		var err error
		if st.dec, err = decode.New(st.buf[j].Codec, decode.Options{Mode: decode.All}); err != nil {
			return nil, err
		}
	}
	st.decAt, st.last = -1, nil
	for k := from; k < j; k++ {
		if err := st.dec.Advance(st.buf[k]); err != nil {
			return nil, err
		}
		s.cpu.yield(lane) // a GOP's worth of frames takes tens of milliseconds: a door frame goes first
	}
	f, err := st.dec.Decode(st.buf[j])
	s.decoded.Add(float64(j - from + 1))
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("%w (the decoder held the picture back)", ErrNoShot)
	}
	st.decAt = abs
	st.last = &Picture{W: f.Width, H: f.Height, BGR: append([]byte(nil), f.BGR...)}
	s.size.Store(uint64(f.Width)<<32 | uint64(f.Height))
	s.mask.BGR(st.last.BGR, f.Width, f.Height, f.Stride) // masked regions are never described
	return st.last, nil
}
