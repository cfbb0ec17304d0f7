package live

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs into the relay's slog logger. Pion warns about what ordinary
// viewing does (a browser's late STUN checks, a DTLS retransmit, a closed stream's RTCP): about
// 830 warnings in nine minutes of one operator's viewing, so its warnings go to debug. Its errors
// are warnings, at most one a minute per scope (with the count of those held back), and the
// socket closing at shutdown, which pion reports as an error, is debug.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct {
	log  *slog.Logger
	mu   sync.Mutex
	last time.Time // the last error logged as a warning
	held int       // errors held back since
}

// errorEvery is how often one scope's errors reach the warning level.
const errorEvery = time.Minute

func (l *pionLogger) error(msg string) {
	if strings.Contains(msg, "use of closed network connection") {
		l.log.Debug(msg)
		return
	}
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < errorEvery {
		l.held++
		l.mu.Unlock()
		l.log.Debug(msg)
		return
	}
	held := l.held
	l.last, l.held = now, 0
	l.mu.Unlock()
	if held > 0 {
		l.log.Warn(msg, "held_back", held)
		return
	}
	l.log.Warn(msg)
}

func (l *pionLogger) Trace(msg string)                  {}
func (l *pionLogger) Tracef(format string, args ...any) {}
func (l *pionLogger) Debug(msg string)                  { l.log.Debug(msg) }
func (l *pionLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l *pionLogger) Info(msg string)                   { l.log.Debug(msg) }
func (l *pionLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l *pionLogger) Warn(msg string)                   { l.log.Debug(msg) }
func (l *pionLogger) Warnf(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l *pionLogger) Error(msg string)                  { l.error(msg) }
func (l *pionLogger) Errorf(format string, args ...any) { l.error(fmt.Sprintf(format, args...)) }
