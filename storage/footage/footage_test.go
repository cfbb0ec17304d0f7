package footage

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/streams"
)

// TestRecordAndCut records a camsim camera into 2 s segments (filesystem blobs, real
// PostgreSQL), then cuts a clip across segment boundaries and checks it with ffprobe: H.264,
// starts on a key frame, covers the range.
func TestRecordAndCut(t *testing.T) {
	testenv.Command(t, "ffprobe")
	ctx := context.Background()
	pool := testenv.Pool(t)
	log := quiet
	stream := liveCamera(t)
	blobs := blob.FS{Root: t.TempDir()}
	idx := PGIndex{Pool: pool}
	rec := NewRecorder("cam001", stream, blobs, idx, Options{SegmentLength: 2 * time.Second}, log)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { rec.Run(rctx); close(done) }()
	start := time.Now()
	time.Sleep(7 * time.Second)
	cancel()
	<-done

	segs, err := idx.Segments(ctx, "cam001", start.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments: %v", len(segs), err)
	}
	for i, sg := range segs {
		d := sg.End.Sub(sg.Start)
		if i < len(segs)-1 && (d < 1900*time.Millisecond || d > 2600*time.Millisecond) {
			t.Errorf("segment %d lasts %v, want ~2 s", i, d)
		}
	}
	// A clip from the middle of the first full segment to the middle of the third.
	from := segs[0].Start.Add(time.Second)
	to := segs[2].Start.Add(time.Second)
	mp4, skipped, err := Clip(ctx, idx, blobs, "cam001", from, to)
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	codec, width, dur, frames := probeClip(t, mp4)
	want := to.Sub(from).Seconds()
	t.Logf("clip %.2f s (asked %.2f s), %d frames, %d bytes", dur, want, frames, len(mp4))
	if codec != "h264" || width != 320 {
		t.Fatalf("clip of %s, %d px wide", codec, width)
	}
	// Key frame precision: it may start up to one GOP (0.5 s) early and end one frame late.
	if dur < want-0.1 || dur > want+0.7 || frames < int(want*25)-3 {
		t.Fatalf("clip %.2f s with %d frames for a %.2f s range", dur, frames, want)
	}
	if _, _, err := Clip(ctx, idx, blobs, "cam001", start.Add(-time.Hour), start.Add(-59*time.Minute)); !errors.Is(err, ErrNoFootage) {
		t.Fatalf("empty range: %v", err)
	}
	// A gap in the recording (the third segment on, 5 s later, as after an outage) is a gap in
	// the clip: its frames play at the time they were taken, not 5 s early.
	gapped := shifted{PGIndex: idx, from: segs[2].Start, by: 5 * time.Second}
	gapTo := to.Add(5 * time.Second)
	gmp4, skipped, err := Clip(ctx, gapped, blobs, "cam001", from, gapTo)
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	if _, _, gdur, gframes := probeClip(t, gmp4); gdur < dur+4.8 || gdur > dur+5.2 || gframes != frames {
		t.Fatalf("a clip over a 5 s gap lasts %.2f s with %d frames, want %.2f s with %d", gdur, gframes, dur+5, frames)
	}
	// A still: the key frame at or before a time (a key frame every 0.5 s), with its parameter
	// sets, as a decoder takes it.
	at := segs[1].Start.Add(1300 * time.Millisecond)
	u, keyAt, err := KeyFrame(ctx, idx, blobs, "cam001", at)
	if err != nil || !u.Key || u.Codec != streams.H264 || len(u.NALUs) < 3 || keyAt.After(at) || at.Sub(keyAt) > 600*time.Millisecond {
		t.Fatalf("key frame at %v: %+v at %v, %v", at, u, keyAt, err)
	}
	if nal := u.NALUs[0][0] & 0x1f; nal != 7 {
		t.Fatalf("the still starts with NAL type %d, want the SPS (7)", nal)
	}
	if _, _, err := KeyFrame(ctx, idx, blobs, "cam001", start.Add(-time.Hour)); !errors.Is(err, ErrNoFootage) {
		t.Fatalf("a still where nothing was recorded: %v", err)
	}
	// A still of a time in the segment after the last one stored (being recorded, not indexed
	// yet: a still of "now") is the last one's last key frame; one further on is a gap.
	last := segs[len(segs)-1]
	length := last.End.Sub(last.Start)
	if _, keyAt, err := KeyFrame(ctx, idx, blobs, "cam001", last.End.Add(length+time.Second)); err != nil || keyAt.After(last.End) || last.End.Sub(keyAt) > 600*time.Millisecond {
		t.Fatalf("a still of the segment being recorded: at %v, %v", keyAt, err)
	}
	if _, _, err := KeyFrame(ctx, idx, blobs, "cam001", last.End.Add(length+3*time.Second)); !errors.Is(err, ErrNoFootage) {
		t.Fatalf("a still past the recording: %v", err)
	}
	// Where a clip starts in time (a player's time 0): the key frame at or before from, the same
	// one a still of from shows; where the recording starts, for a range that starts before it.
	cs, err := ClipStart(ctx, idx, blobs, "cam001", from, to)
	_, fromKey, kerr := KeyFrame(ctx, idx, blobs, "cam001", from)
	if err != nil || kerr != nil || !cs.Equal(fromKey) || cs.After(from) || from.Sub(cs) > 600*time.Millisecond {
		t.Fatalf("clip of %v starts at %v (%v), its key frame is at %v (%v)", from, cs, err, fromKey, kerr)
	}
	if cs, err := ClipStart(ctx, idx, blobs, "cam001", segs[0].Start.Add(-30*time.Second), to); err != nil || !cs.Equal(segs[0].Start) {
		t.Fatalf("a range from before the recording starts at %v (%v), want the first segment's start %v", cs, err, segs[0].Start)
	}
	if _, err := ClipStart(ctx, idx, blobs, "cam001", start.Add(-time.Hour), start.Add(-59*time.Minute)); !errors.Is(err, ErrNoFootage) {
		t.Fatalf("where a clip of an empty range starts: %v", err)
	}
	// A corrupt segment is skipped and named; the rest of the range still comes back.
	if err := blobs.Put(ctx, segs[1].Key, []byte("not an mp4 at all"), "video/mp4"); err != nil {
		t.Fatal(err)
	}
	mp4, skipped, err = Clip(ctx, idx, blobs, "cam001", from, to)
	if err != nil || len(skipped) != 1 || !strings.Contains(skipped[0], segs[1].Key) || len(mp4) == 0 {
		t.Fatalf("with a corrupt segment: %d bytes, skipped %v, %v", len(mp4), skipped, err)
	}
}

// probeClip is what ffprobe says of an MP4: its codec, width, duration in seconds and frames.
func probeClip(t *testing.T, mp4 []byte) (codec string, width int, dur float64, frames int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(f, mp4, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration",
		"-count_frames", "-of", "json", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v %s", err, out)
	}
	var probe struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int
			Frames string `json:"nb_read_frames"`
		}
		Format struct{ Duration string }
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) == 0 {
		t.Fatalf("ffprobe said %s (%v)", out, err)
	}
	dur, _ = strconv.ParseFloat(probe.Format.Duration, 64)
	frames, _ = strconv.Atoi(probe.Streams[0].Frames)
	return probe.Streams[0].Codec, probe.Streams[0].Width, dur, frames
}

// shifted is an index whose segments from a time on were recorded by later: a gap in the
// recording.
type shifted struct {
	PGIndex
	from time.Time
	by   time.Duration
}

func (s shifted) Segments(ctx context.Context, camera string, from, to time.Time) ([]Segment, error) {
	all, err := s.PGIndex.Segments(ctx, camera, from.Add(-time.Hour), to.Add(time.Hour))
	var out []Segment
	for _, sg := range all {
		if !sg.Start.Before(s.from) {
			sg.Start, sg.End = sg.Start.Add(s.by), sg.End.Add(s.by)
		}
		if sg.Start.Before(to) && sg.End.After(from) {
			out = append(out, sg)
		}
	}
	return out, err
}
