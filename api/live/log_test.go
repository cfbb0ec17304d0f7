package live

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestPionLogsQuiet: pion's warnings about ordinary viewing stay at debug (issue 18: 830 of them
// in nine minutes flooded the terminal); its errors reach the warning level once a minute per
// scope, with the count of those held back.
func TestPionLogsQuiet(t *testing.T) {
	var buf bytes.Buffer
	l := pionLogs{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}.NewLogger("ice")
	for range 100 {
		l.Warnf("discard message from %s, unknown TransactionID", "127.0.0.1:5000")
		l.Infof("selected pair")
	}
	if buf.Len() != 0 {
		t.Fatalf("warnings or infos logged above debug: %s", buf.String())
	}
	for range 50 {
		l.Errorf("failed to send packet: %s", "no route")
	}
	l.Error("write udp: use of closed network connection")
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for 50 errors in a minute, want 1: %s", n, buf.String())
	}
	pl := l.(*pionLogger)
	pl.last = pl.last.Add(-errorEvery)
	l.Error("failed to send packet: no route")
	if !strings.Contains(buf.String(), "held_back=49") {
		t.Fatalf("the next minute's warning does not count the held-back errors: %s", buf.String())
	}
}
