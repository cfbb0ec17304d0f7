package rtsp

import (
	"log/slog"
	"time"
)

// errorLogger turns a flood of malformed-input errors into one log line per interval with a
// count and the latest error. It is owned by the goroutine that reports the errors.
type errorLogger struct {
	log      *slog.Logger
	interval time.Duration
	last     time.Time
	pending  int
	latest   error
}

func newErrorLogger(log *slog.Logger, interval time.Duration) *errorLogger {
	return &errorLogger{log: log, interval: interval}
}

func (l *errorLogger) note(err error) {
	l.pending++
	l.latest = err
	if time.Since(l.last) >= l.interval {
		l.flush()
	}
}

func (l *errorLogger) flush() {
	if l.pending == 0 {
		return
	}
	l.log.Warn("malformed stream input", "count", l.pending, "latest", l.latest, "interval", l.interval)
	l.pending, l.last = 0, time.Now()
}
