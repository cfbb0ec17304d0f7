package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/sim/whep"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/streams"
)

// feed writes a camsim clip into a stream in real time, looping, as the RTSP session would:
// parameter sets in front of every key unit.
func feed(ctx context.Context, s *streams.Stream, clip *camsim.Clip, codec streams.Codec) {
	fps := clip.Params.FPS
	tick := time.NewTicker(time.Second / time.Duration(fps))
	defer tick.Stop()
	for i := 0; ; i++ {
		au := clip.Units[i%len(clip.Units)]
		key := false
		for _, n := range au {
			if n[0]&0x1f == 5 {
				key = true
			}
		}
		nalus := au
		if key {
			nalus = append([][]byte{clip.SPS, clip.PPS}, au...)
		}
		s.Write(&streams.Unit{Codec: codec, PTS: time.Duration(i) * time.Second / time.Duration(fps), Arrival: time.Now(), NALUs: nalus, Key: key})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

type fixture struct {
	relay *Relay
	srv   *httptest.Server
}

func newFixture(t *testing.T, cams map[string]streams.Codec) *fixture {
	t.Helper()
	return newFixtureConfig(t, cams, Config{UDPAddr: "127.0.0.1:0"})
}

func newFixtureConfig(t *testing.T, cams map[string]streams.Codec, cfg Config) *fixture {
	t.Helper()
	td := testenv.Testdata(t)
	lib, err := camsim.LoadLibrary(td)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := camsim.SmallClip(context.Background(), lib) // 25 fps, a key frame every 0.5 s
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srcs := map[string]*streams.Stream{}
	done := make(chan struct{}, len(cams))
	for id, codec := range cams {
		s := streams.NewStream()
		s.KeepGOP(300, 4<<20)
		srcs[id] = s
		go func() { feed(ctx, s, clip, codec); done <- struct{}{} }()
	}
	r, err := New(cfg, func(id string) (*streams.Stream, bool) { s, ok := srcs[id]; return s, ok }, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/live/{camera}/whep", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		sess, err := r.Offer(req.Context(), req.PathValue("camera"), string(b), req.Header.Get("X-Owner"))
		switch {
		case errors.Is(err, ErrCodec):
			http.Error(w, err.Error(), http.StatusNotAcceptable)
		case errors.Is(err, ErrOwnerLimit):
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			w.Header().Set("Location", "/v1/live/"+req.PathValue("camera")+"/whep/"+sess.ID)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, sess.Answer)
		}
	})
	mux.HandleFunc("DELETE /v1/live/{camera}/whep/{id}", func(w http.ResponseWriter, req *http.Request) {
		if r.CloseSession(req.PathValue("camera"), req.PathValue("id")) != nil {
			http.NotFound(w, req)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		r.Close()
		cancel()
		for range cams {
			<-done
		}
		for _, s := range srcs {
			s.Close()
		}
	})
	return &fixture{relay: r, srv: srv}
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWHEPViewersShareOneCameraSession: three viewers of one camera get its frames, starting on
// the cached GOP at once; the camera is read once; sessions end and are counted when viewers
// hang up or simply go away, and the camera is no longer read when nobody watches.
func TestWHEPViewersShareOneCameraSession(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch_writes=%v", batch), func(t *testing.T) { testViewersShareOneCameraSession(t, batch) })
	}
}

func testViewersShareOneCameraSession(t *testing.T, batch bool) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) }) // after the fixture's cleanup
	f := newFixtureConfig(t, map[string]streams.Codec{"cam001": streams.H264}, Config{UDPAddr: "127.0.0.1:0", BatchWrites: batch})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	time.Sleep(700 * time.Millisecond) // the camera has been running: the GOP cache is not at its start
	var vs []*whep.Viewer
	for range 3 {
		v, err := whep.Dial(ctx, f.srv.URL+"/v1/live/cam001/whep", whep.Options{})
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	for i, v := range vs {
		if err := v.WaitFrames(ctx, 50); err != nil { // 2 s of video
			t.Fatalf("viewer %d: %v", i, err)
		}
		if v.Codec() != webrtc.MimeTypeH264 {
			t.Fatalf("viewer %d codec %q", i, v.Codec())
		}
		if ff := v.FirstFrame(); ff <= 0 || ff > 300*time.Millisecond { // the GOP cache: no wait for a key frame
			t.Fatalf("viewer %d: first frame after %v", i, ff)
		}
		t.Logf("viewer %d: first frame %v after the offer", i, v.FirstFrame().Round(time.Millisecond))
	}
	f.relay.mu.Lock()
	ncams := len(f.relay.cams)
	f.relay.mu.Unlock()
	if ncams != 1 || f.relay.Viewers("cam001") != 3 {
		t.Fatalf("%d camera sessions, %d viewers", ncams, f.relay.Viewers("cam001"))
	}
	// One hangs up (DELETE), one goes away without a word (a closed tab).
	if err := vs[0].Close(true); err != nil {
		t.Fatal(err)
	}
	vs[1].Close(false)
	waitFor(t, "two sessions ended", 5*time.Second, func() bool { return f.relay.Viewers("cam001") == 1 })
	before := vs[2].Frames.Load()
	time.Sleep(400 * time.Millisecond)
	if vs[2].Frames.Load() <= before {
		t.Fatal("the remaining viewer stopped receiving")
	}
	vs[2].Close(true)
	waitFor(t, "camera released", 5*time.Second, func() bool {
		f.relay.mu.Lock()
		defer f.relay.mu.Unlock()
		return len(f.relay.cams) == 0
	})
}

// TestWHEPRefusals: an unknown camera, an offer that is not SDP, and an H.265 camera for a
// browser that offers only H.264 are refused with a clear message; a browser offering H.265
// gets it.
func TestWHEPRefusals(t *testing.T) {
	f := newFixture(t, map[string]streams.Codec{"cam001": streams.H264, "cam265": streams.H265})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := whep.Dial(ctx, f.srv.URL+"/v1/live/nope/whep", whep.Options{})
	var we *whep.Error
	if !errors.As(err, &we) || !strings.Contains(we.Body, "no such camera") {
		t.Fatalf("unknown camera: %v", err)
	}
	resp, _ := http.Post(f.srv.URL+"/v1/live/cam001/whep", "application/sdp", strings.NewReader("hello"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("not SDP: %d", resp.StatusCode)
	}
	resp.Body.Close()
	_, err = whep.Dial(ctx, f.srv.URL+"/v1/live/cam265/whep", whep.Options{Codecs: []string{webrtc.MimeTypeH264}})
	if !errors.As(err, &we) || we.Status != http.StatusNotAcceptable || !strings.Contains(we.Body, "H.265") {
		t.Fatalf("H.265 to an H.264-only browser: %v", err)
	}
	v, err := whep.Dial(ctx, f.srv.URL+"/v1/live/cam265/whep", whep.Options{Codecs: []string{webrtc.MimeTypeH264, webrtc.MimeTypeH265}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(true)
	if err := v.WaitFrames(ctx, 5); err != nil || v.Codec() != webrtc.MimeTypeH265 {
		t.Fatalf("H.265 viewer: %v, codec %q", err, v.Codec())
	}
}

// TestSlowViewerLosesFramesToTheNextKey: a viewer whose queue is full loses frames up to the
// next key frame and then resumes; nobody else is affected (offer never blocks).
func TestSlowViewerLosesFramesToTheNextKey(t *testing.T) {
	r := &Relay{}
	r.initMetrics()
	v := &viewer{cam: &camSession{camera: "cam001"}, q: make(chan *frame, 2)}
	key, delta := &frame{key: true}, &frame{}
	start := time.Now()
	v.offer(key, r)
	v.offer(delta, r)
	v.offer(delta, r) // full: lost, and now waiting for a key frame
	v.offer(delta, r)
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("offer blocked")
	}
	if v.dropped.Load() != 1 || !v.waitKey {
		t.Fatalf("dropped %d, waitKey %v", v.dropped.Load(), v.waitKey)
	}
	<-v.q
	<-v.q
	v.offer(delta, r) // still waiting: skipped
	if len(v.q) != 0 {
		t.Fatal("a delta frame was queued before the key frame")
	}
	v.offer(key, r)
	if len(v.q) != 1 || v.waitKey {
		t.Fatal("did not resume on the key frame")
	}
}

// TestAdmissionControlRefusesWhenViewersLose: when more than a tenth of the viewers report
// losing over 5% of their packets, new viewers are refused (503) rather than admitted to
// degrade everyone.
func TestAdmissionControlRefusesWhenViewersLose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mark    func(v *viewer)
		n       int
		refused bool
	}{
		{"3 of 20 losing", func(v *viewer) { v.lossFrac.Store(40) /* 16% lost */ }, 3, true},
		{"3 of 20 late", func(v *viewer) {
			v.lag.Store(int64(300 * time.Millisecond))
			v.lagAt.Store(time.Now().Add(time.Hour).UnixNano())
		}, 3, true},
		{"3 of 20 late long ago", func(v *viewer) {
			v.lag.Store(int64(300 * time.Millisecond))
			v.lagAt.Store(time.Now().Add(-time.Minute).UnixNano())
		}, 3, false},
		{"1 of 20 losing", func(v *viewer) { v.lossFrac.Store(40) }, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fakeRelay(t, Config{UDPAddr: "127.0.0.1:0", NoShed: true})
			offer := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
			// Not busy: the offer waits for the camera's codec until ctx ends (the stream is empty).
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := r.Offer(ctx, "cam001", offer, ""); errors.Is(err, ErrBusy) {
				t.Fatal("busy with no viewers")
			}
			var vs []*viewer
			for i := range 20 {
				v := &viewer{id: string(rune('a' + i)), offered: time.Now().Add(-time.Minute)}
				if i < tc.n {
					tc.mark(v)
				}
				vs = append(vs, v)
			}
			addViewers(r, vs...)
			deadline := time.Now().Add(2500 * time.Millisecond) // watchLoad looks every second
			for {
				_, err := r.Offer(ctx, "cam001", offer, "")
				if errors.Is(err, ErrBusy) {
					if !tc.refused {
						t.Fatal("refused new viewers")
					}
					return
				}
				if time.Now().After(deadline) {
					if tc.refused {
						t.Fatalf("not refused: %v", err)
					}
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestOverloadShedsNewestViewers: when the relay's own frames wait over shedLag for more than a
// tenth of its viewers for shedAfter seconds in a row, it ends the newest twentieth of its
// viewers, and stops once they recover.
func TestOverloadShedsNewestViewers(t *testing.T) {
	r := fakeRelay(t, Config{UDPAddr: "127.0.0.1:0"})
	shed := make(chan *viewer, 100)
	r.mu.Lock()
	r.shed = func(v *viewer) { shed <- v }
	r.mu.Unlock()
	var vs []*viewer
	for i := range 40 {
		v := &viewer{id: fmt.Sprint(i), offered: time.Now().Add(-time.Hour + time.Duration(i)*time.Minute)} // i: newer
		if i < 5 {
			v.lag.Store(int64(time.Second))
			v.lagAt.Store(time.Now().Add(time.Hour).UnixNano()) // fresh throughout the test
		}
		vs = append(vs, v)
	}
	addViewers(r, vs...)
	select {
	case <-shed:
		t.Fatalf("shed before %d s of overload", shedAfter)
	case <-time.After(shedAfter*time.Second - 500*time.Millisecond):
	}
	var got []string
	timeout := time.After(2500 * time.Millisecond)
	for len(got) < 2 {
		select {
		case v := <-shed:
			got = append(got, v.id)
			r.mu.Lock()
			delete(r.sessions, v.id)
			r.mu.Unlock()
		case <-timeout:
			t.Fatalf("shed %v in %d s of overload, want 2 (40/20)", got, shedAfter+2)
		}
	}
	if until := time.Unix(0, r.busyUntil.Load()); time.Until(until) < shedCooldown-5*time.Second {
		t.Fatalf("newcomers refused only until %v after a shed, want about %v", time.Until(until).Round(time.Second), shedCooldown)
	}
	slices.Sort(got) // ended concurrently
	if got[0] != "38" || got[1] != "39" {
		t.Fatalf("shed %v, want the two newest: [38 39]", got)
	}
	for _, v := range vs {
		v.lag.Store(0) // recovered
	}
	time.Sleep(1200 * time.Millisecond)
	select {
	case v := <-shed:
		if v2 := len(shed); v2 > 0 {
			t.Fatalf("still shedding after recovery: %s and %d more", v.id, v2)
		}
	case <-time.After(1500 * time.Millisecond):
	}
}

// fakeRelay is a relay over one empty stream, for tests that fill its sessions with viewers that
// are not real sessions (addViewers): its cleanup removes them before Close, which must not end
// them.
func fakeRelay(t *testing.T, cfg Config) *Relay {
	t.Helper()
	s := streams.NewStream()
	r, err := New(cfg, func(string) (*streams.Stream, bool) { return s, true }, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.mu.Lock()
		clear(r.sessions)
		r.mu.Unlock()
		r.Close()
		s.Close()
	})
	return r
}

func addViewers(r *Relay, vs ...*viewer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range vs {
		r.sessions[v.id] = v
	}
}

// TestNackResponder checks the relay's own NACK answers: a lost packet still in the history is
// resent with the viewer's sequence number and timestamp, a repeat within the gap and a fourth
// request are not, packets gone from the history are counted, and the budget caps a flood.
func TestNackResponder(t *testing.T) {
	r := &Relay{}
	r.initMetrics()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{track: track, budget: resendsPerSec, refill: time.Now()}
	orig := &rtp.Packet{Header: rtp.Header{SequenceNumber: 7, Timestamp: 1}, Payload: []byte{1, 2, 3}}
	for i := range uint16(nackHistory) {
		seq := 1000 + i
		v.hist[seq%nackHistory] = sentPacket{orig: orig, seq: seq, ts: 90000}
	}
	nack := func(seqs ...uint16) {
		n := &rtcp.TransportLayerNack{}
		for _, s := range seqs {
			n.Nacks = append(n.Nacks, rtcp.NackPair{PacketID: s})
		}
		v.nack(r, n)
	}
	count := func(result string) int { return int(testutil.ToFloat64(r.nacks.WithLabelValues(result))) }

	nack(1000, 1001, 999) // 999 is older than the history
	if count("resent") != 2 || count("gone") != 1 || v.resends.Load() != 2 {
		t.Fatalf("resent %d gone %d, want 2 and 1", count("resent"), count("gone"))
	}
	nack(1000) // the same loss again at once: a repeat crossing the resend
	if count("resent") != 2 || count("repeat") != 1 {
		t.Fatalf("resent %d repeat %d after an immediate repeat, want 2 and 1", count("resent"), count("repeat"))
	}
	for range 3 {
		time.Sleep(resendGap + 5*time.Millisecond)
		nack(1000)
	}
	if count("resent") != 4 || count("repeat") != 2 { // resent 3 times in all, the 4th refused
		t.Fatalf("resent %d repeat %d after 4 requests for one packet, want 4 and 2", count("resent"), count("repeat"))
	}
	var flood []uint16
	for i := range uint16(200) {
		flood = append(flood, 1100+i)
	}
	nack(flood...)
	if over := count("over_budget"); over < 200-resendsPerSec || over > 200-resendsPerSec+5 {
		t.Fatalf("a flood of 200 losses: %d over budget, want about %d", over, 200-resendsPerSec)
	}
	if h := v.hist[1000%nackHistory]; h.resends != maxResends || h.seq != 1000 {
		t.Fatalf("history entry %+v", h)
	}
}

// TestOwnerLimitAndRevocation: one principal holds at most MaxPerOwner views; a revoked
// principal's views end at once (CloseOwner), and others' stay.
func TestOwnerLimitAndRevocation(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) }) // after the fixture's cleanup
	f := newFixtureConfig(t, map[string]streams.Codec{"cam001": streams.H264}, Config{UDPAddr: "127.0.0.1:0", MaxPerOwner: 2})
	ctx := context.Background()
	dial := func(owner string) (*whep.Viewer, error) {
		return whep.Dial(ctx, f.srv.URL+"/v1/live/cam001/whep", whep.Options{Client: &http.Client{Transport: headerRT{"X-Owner", owner}}})
	}
	var views []*whep.Viewer
	t.Cleanup(func() { // before the leak check, also when the test fails
		for _, v := range views {
			v.Close(false)
		}
	})
	for range 2 {
		v, err := dial("7")
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, v)
	}
	if _, err := dial("7"); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("a third view for one principal: %v", err)
	}
	other, err := dial("8")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(true)
	// Revoked while watching: a view revoked before its DTLS handshake finished gets no goodbye
	// and ends only when ICE times out (tens of seconds), so the test waits until all three play.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, v := range append(views, other) {
		if err := v.WaitFrames(wctx, 1); err != nil {
			t.Fatalf("a view got no frame: %v", err)
		}
	}
	if n := f.relay.CloseOwner("7"); n != 2 {
		t.Fatalf("closed %d of principal 7's views", n)
	}
	waitFor(t, "the revoked views end", 5*time.Second, func() bool { return views[0].Ended() && views[1].Ended() })
	if f.relay.Viewers("") != 1 || other.Ended() {
		t.Fatalf("%d viewers left, the other principal's ended: %v", f.relay.Viewers(""), other.Ended())
	}
}

// headerRT sets one header on every request.
type headerRT struct{ k, v string }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	return http.DefaultTransport.RoundTrip(r)
}
