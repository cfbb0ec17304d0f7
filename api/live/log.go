package live

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs into the relay's slog logger: its warnings and errors as warnings
// (but the socket closing at shutdown, which pion reports as an error, as debug), the rest as
// debug.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) warn(msg string) {
	if strings.Contains(msg, "use of closed network connection") {
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}

func (l pionLogger) Trace(msg string)                  {}
func (l pionLogger) Tracef(format string, args ...any) {}
func (l pionLogger) Debug(msg string)                  { l.log.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l pionLogger) Info(msg string)                   { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l pionLogger) Warn(msg string)                   { l.warn(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.warn(fmt.Sprintf(format, args...)) }
func (l pionLogger) Error(msg string)                  { l.warn(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.warn(fmt.Sprintf(format, args...)) }
