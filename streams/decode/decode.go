// Package decode turns access units into BGR pictures with libavcodec (cgo). A Decoder is a
// native handle: one goroutine owns it, and Close frees it. Three modes: every frame, key frames
// only (non-key units are never sent to the codec, like ffmpeg's -skip_frame nokey), and N-fps
// sampling (every unit is decoded to keep references intact; only sampled pictures are converted).
package decode

// #cgo pkg-config: libavcodec libavutil libswscale
// #include <libavcodec/avcodec.h>
// #include <libavutil/imgutils.h>
// #include <libavutil/log.h>
// #include <libswscale/swscale.h>
//
// static int vigil_averror_eagain(void) { return AVERROR(EAGAIN); }
// static void vigil_quiet(void) { av_log_set_level(AV_LOG_QUIET); }
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/vigil-oss/vigil/streams"
)

// Mode selects which pictures come out.
type Mode int

// Modes.
const (
	All      Mode = iota // every picture
	KeyOnly              // key pictures only; other units are skipped before the codec
	Sampling             // at most Options.FPS pictures per second of stream time
)

// Options configure a Decoder.
type Options struct {
	Mode Mode
	// FPS is the sampling rate in Sampling mode.
	FPS float64
	// MaxSide, when > 0, scales pictures down so their longer side is at most this (aspect kept).
	MaxSide int
	// Threads for the codec. Default 1: vigil runs one decoder per camera, so cameras are the
	// parallelism and frame threads would only add latency.
	Threads int
}

// Frame is a decoded BGR picture. BGR stays valid until the next Decode or Close.
type Frame struct {
	Width, Height int
	Stride        int // bytes per row
	PTS           time.Duration
	Key           bool
	BGR           []byte
}

// Luma is a decoded picture's grey plane (the Y of its YUV) before any conversion: enough for a
// motion gate, which then asks for the BGR picture only when something moved (Decoder.BGR).
type Luma struct {
	Width, Height int
	Stride        int // bytes per row of Y
	PTS           time.Duration
	// Full is true for a full-range picture (0–255); otherwise Y is video range (16–235).
	Full bool
	// Y is nil for a picture whose grey plane is not 8-bit (10-bit, packed formats): convert it.
	// It stays valid until the decoder's next call.
	Y []byte
}

// Errors.
var (
	ErrClosed      = errors.New("decode: decoder closed")
	ErrUnsupported = errors.New("decode: codec not supported")
)

// Error is a codec error on one unit; the decoder stays usable and recovers on the next key unit.
type Error struct {
	Op   string
	Code int
}

func (e *Error) Error() string {
	var buf [128]C.char
	C.av_strerror(C.int(e.Code), &buf[0], C.size_t(len(buf)))
	return fmt.Sprintf("decode: %s: %s", e.Op, C.GoString(&buf[0]))
}

var quietOnce sync.Once

// Decoder wraps one libavcodec decoder, one swscale context and the output buffer.
type Decoder struct {
	opts  Options
	codec streams.Codec
	ctx   *C.AVCodecContext
	frame *C.AVFrame
	sws   *C.struct_SwsContext
	out   *C.uint8_t // BGR buffer, av_malloc'ed
	outW  int
	outH  int
	pkt   []byte // Annex-B staging buffer with padding, reused
	// Sampling state.
	nextSample time.Duration
	started    bool
	waitKey    bool // after an error, send nothing until a key unit
	// held says d.frame holds the picture DecodeLuma returned last, until the next call.
	held    bool
	heldPTS time.Duration
}

// New returns a decoder for codec.
func New(codec streams.Codec, opts Options) (*Decoder, error) {
	quietOnce.Do(func() { C.vigil_quiet() }) // errors are returned and counted, not printed
	var id C.enum_AVCodecID
	switch codec {
	case streams.H264:
		id = C.AV_CODEC_ID_H264
	case streams.H265:
		id = C.AV_CODEC_ID_HEVC
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupported, codec)
	}
	if opts.Mode == Sampling && opts.FPS <= 0 {
		return nil, errors.New("decode: sampling mode needs FPS > 0")
	}
	if opts.Threads <= 0 {
		opts.Threads = 1
	}
	c := C.avcodec_find_decoder(id)
	if c == nil {
		return nil, fmt.Errorf("%w: libavcodec has no %s decoder", ErrUnsupported, codec)
	}
	d := &Decoder{opts: opts, codec: codec, waitKey: true}
	d.ctx = C.avcodec_alloc_context3(c)
	if d.ctx == nil {
		return nil, errors.New("decode: avcodec_alloc_context3 failed")
	}
	d.ctx.thread_count = C.int(opts.Threads)
	d.ctx.flags |= C.AV_CODEC_FLAG_LOW_DELAY
	if opts.Mode == KeyOnly {
		d.ctx.skip_frame = C.AVDISCARD_NONKEY
	}
	if res := C.avcodec_open2(d.ctx, c, nil); res < 0 {
		d.Close()
		return nil, &Error{Op: "open", Code: int(res)}
	}
	d.frame = C.av_frame_alloc()
	if d.frame == nil {
		d.Close()
		return nil, errors.New("decode: av_frame_alloc failed")
	}
	return d, nil
}

// Close frees the native resources. It is safe to call twice.
func (d *Decoder) Close() {
	d.release()
	if d.sws != nil {
		C.sws_freeContext(d.sws)
		d.sws = nil
	}
	if d.out != nil {
		C.av_free(unsafe.Pointer(d.out))
		d.out = nil
	}
	if d.frame != nil {
		C.av_frame_free(&d.frame)
	}
	if d.ctx != nil {
		C.avcodec_free_context(&d.ctx)
	}
}

// Decode sends u to the codec and returns the picture it completes, or nil when the unit was
// skipped (mode, waiting for a key unit) or produced no picture. A returned *Error means the unit
// was corrupt; the decoder then waits for the next key unit.
func (d *Decoder) Decode(u *streams.Unit) (*Frame, error) {
	pts, ok, err := d.next(u)
	if !ok || err != nil {
		return nil, err
	}
	defer d.release()
	return d.convert(pts)
}

// DecodeLuma is Decode without the conversion: it returns the picture's grey plane, and BGR
// converts the same picture when it is wanted. A camera's motion gate looks at every sampled
// picture and passes few; converting only those saves most of the conversions (on a 640×360
// key frame about 7% of its cost: BenchmarkSubstreamKeyframes).
func (d *Decoder) DecodeLuma(u *streams.Unit) (*Luma, error) {
	pts, ok, err := d.next(u)
	if !ok || err != nil {
		return nil, err
	}
	l := &Luma{Width: int(d.frame.width), Height: int(d.frame.height), PTS: pts}
	switch int32(d.frame.format) {
	case C.AV_PIX_FMT_YUVJ420P, C.AV_PIX_FMT_YUVJ422P, C.AV_PIX_FMT_YUVJ444P:
		l.Full = true
		fallthrough
	case C.AV_PIX_FMT_YUV420P, C.AV_PIX_FMT_YUV422P, C.AV_PIX_FMT_YUV444P, C.AV_PIX_FMT_GRAY8, C.AV_PIX_FMT_NV12:
		l.Stride = int(d.frame.linesize[0])
		if l.Stride >= l.Width && d.frame.data[0] != nil {
			l.Full = l.Full || d.frame.color_range == C.AVCOL_RANGE_JPEG
			l.Y = unsafe.Slice((*byte)(unsafe.Pointer(d.frame.data[0])), l.Stride*(l.Height-1)+l.Width)
		}
	}
	return l, nil
}

// next decodes u and, when it completes a picture to return (in Sampling mode, one on the
// grid), holds it in d.frame until the next call and reports its time.
func (d *Decoder) next(u *streams.Unit) (pts time.Duration, ok bool, err error) {
	got, err := d.decode(u)
	if !got || err != nil {
		return 0, false, err
	}
	pts = time.Duration(d.frame.pts) * time.Microsecond
	if d.opts.Mode == Sampling {
		if d.started && pts < d.nextSample {
			C.av_frame_unref(d.frame)
			return 0, false, nil
		}
		step := time.Duration(float64(time.Second) / d.opts.FPS)
		if !d.started || pts-d.nextSample > step {
			d.nextSample = pts // first picture or a gap: restart the grid here
		}
		d.started = true
		d.nextSample += step
	}
	d.held, d.heldPTS = true, pts
	return pts, true, nil
}

// BGR converts the picture DecodeLuma returned last (scaled to MaxSide like Decode's). It fails
// when the decoder has been called since.
func (d *Decoder) BGR() (*Frame, error) {
	if !d.held {
		return nil, errors.New("decode: BGR without a picture from DecodeLuma")
	}
	return d.convert(d.heldPTS)
}

// release drops the picture held for BGR.
func (d *Decoder) release() {
	if d.held {
		d.held = false
		C.av_frame_unref(d.frame)
	}
}

// Advance decodes u to keep the codec's references but converts nothing: the cheap step through
// the frames in front of one that is wanted (a shot decoded on demand from a main stream).
func (d *Decoder) Advance(u *streams.Unit) error {
	got, err := d.decode(u)
	if got {
		C.av_frame_unref(d.frame)
	}
	return err
}

// decode sends u and receives its picture into d.frame; got says one came (the caller unrefs it).
func (d *Decoder) decode(u *streams.Unit) (got bool, err error) {
	if d.ctx == nil {
		return false, ErrClosed
	}
	d.release()
	if d.waitKey && !u.Key {
		return false, nil
	}
	if d.opts.Mode == KeyOnly && !u.Key {
		return false, nil
	}
	d.waitKey = false
	d.stage(u)
	var pkt C.AVPacket
	var pin runtime.Pinner
	pin.Pin(&d.pkt[0])
	pkt.data = (*C.uint8_t)(unsafe.Pointer(&d.pkt[0]))
	pkt.size = C.int(len(d.pkt) - C.AV_INPUT_BUFFER_PADDING_SIZE)
	pkt.pts = C.int64_t(u.PTS / time.Microsecond)
	if u.Key {
		pkt.flags |= C.AV_PKT_FLAG_KEY
	}
	res := C.avcodec_send_packet(d.ctx, &pkt)
	pin.Unpin()
	if res < 0 {
		d.waitKey = true
		return false, &Error{Op: "send", Code: int(res)}
	}
	res = C.avcodec_receive_frame(d.ctx, d.frame)
	if res == C.vigil_averror_eagain() {
		return false, nil
	}
	if res < 0 {
		d.waitKey = true
		return false, &Error{Op: "receive", Code: int(res)}
	}
	if d.frame.decode_error_flags != 0 || d.frame.flags&C.AV_FRAME_FLAG_CORRUPT != 0 {
		C.av_frame_unref(d.frame)
		d.waitKey = true
		return false, &Error{Op: "picture", Code: int(C.AVERROR_INVALIDDATA)}
	}
	return true, nil
}

// stage writes u as Annex-B into the reused buffer, with the zero padding libavcodec reads past
// the end.
func (d *Decoder) stage(u *streams.Unit) {
	n := C.AV_INPUT_BUFFER_PADDING_SIZE
	for _, nalu := range u.NALUs {
		n += 4 + len(nalu)
	}
	if cap(d.pkt) < n {
		d.pkt = make([]byte, 0, n*2)
	}
	b := d.pkt[:0]
	for _, nalu := range u.NALUs {
		b = append(b, 0, 0, 0, 1)
		b = append(b, nalu...)
	}
	for i := 0; i < C.AV_INPUT_BUFFER_PADDING_SIZE; i++ {
		b = append(b, 0)
	}
	d.pkt = b
}

func (d *Decoder) convert(pts time.Duration) (*Frame, error) {
	w, h := int(d.frame.width), int(d.frame.height)
	ow, oh := w, h
	if m := d.opts.MaxSide; m > 0 && max(w, h) > m {
		if w >= h {
			ow, oh = m, (h*m/w)&^1
		} else {
			ow, oh = (w*m/h)&^1, m
		}
	}
	if d.out == nil || ow != d.outW || oh != d.outH {
		if d.out != nil {
			C.av_free(unsafe.Pointer(d.out))
		}
		d.out = (*C.uint8_t)(C.av_malloc(C.size_t(ow * oh * 3)))
		if d.out == nil {
			return nil, errors.New("decode: out of memory for the BGR buffer")
		}
		d.outW, d.outH = ow, oh
	}
	d.sws = C.sws_getCachedContext(d.sws, C.int(w), C.int(h), int32(d.frame.format),
		C.int(ow), C.int(oh), C.AV_PIX_FMT_BGR24, C.SWS_BILINEAR, nil, nil, nil)
	if d.sws == nil {
		return nil, errors.New("decode: sws_getCachedContext failed")
	}
	dst := [4]*C.uint8_t{d.out}
	dstStride := [4]C.int{C.int(ow * 3)}
	C.sws_scale(d.sws, (**C.uint8_t)(unsafe.Pointer(&d.frame.data[0])), (*C.int)(unsafe.Pointer(&d.frame.linesize[0])),
		0, C.int(h), &dst[0], &dstStride[0])
	return &Frame{
		Width: ow, Height: oh, Stride: ow * 3, PTS: pts,
		Key: d.frame.key_frame != 0,
		BGR: unsafe.Slice((*byte)(unsafe.Pointer(d.out)), ow*oh*3),
	}, nil
}
