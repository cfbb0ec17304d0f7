package pipeline

import (
	"testing"
	"time"

	"github.com/vigil-oss/vigil/streams"
)

// TestShotBufferBounded: the main stream's buffer keeps the units since the key frame before
// last, and never more than its unit and byte budgets, whatever a camera sends.
func TestShotBufferBounded(t *testing.T) {
	st := &shotState{decAt: -1}
	unit := func(key bool, size int) *streams.Unit {
		return &streams.Unit{Key: key, NALUs: [][]byte{make([]byte, size)}, Arrival: time.Now()}
	}
	for g := 0; g < 5; g++ { // five GOPs of 10 frames
		for i := 0; i < 10; i++ {
			st.add(unit(i == 0, 1000))
		}
	}
	if len(st.buf) != 20 || !st.buf[0].Key || st.base != 30 || st.bytes != 20*1000 {
		t.Fatalf("kept %d units from %d (%d bytes), want the last two GOPs", len(st.buf), st.base, st.bytes)
	}
	for i := 0; i < 1000; i++ { // a camera that never sends another key frame
		st.add(unit(false, 1000))
	}
	if len(st.buf) > maxShotUnits {
		t.Fatalf("%d units kept", len(st.buf))
	}
	for i := 0; i < 40; i++ { // huge frames
		st.add(unit(false, 1<<20))
	}
	if st.bytes > maxShotBytes || len(st.buf) == 0 {
		t.Fatalf("%d bytes in %d units kept", st.bytes, len(st.buf))
	}
}
