package measure

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartCamsim runs the camsim binary with args (GOGC 100 whatever the caller uses) and waits
// until it serves; stop ends it. A camsim that exits before it serves (a port taken, a bad flag)
// is an error at once, with the last lines it wrote to stderr (which also go to stderr).
func StartCamsim(bin string, stderr io.Writer, args ...string) (pid int, stop func(), err error) {
	sim := exec.Command(bin, args...)
	sim.Env = append(os.Environ(), "GOGC=100")
	out, _ := sim.StdoutPipe()
	tail := &tailWriter{}
	sim.Stderr = io.MultiWriter(stderr, tail)
	if err := sim.Start(); err != nil {
		return 0, nil, err
	}
	stop = func() {
		_ = sim.Process.Signal(syscall.SIGINT)
		_ = sim.Wait()
	}
	ready, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(out)
		served := false
		for sc.Scan() {
			// "camsim: N cameras at rtsp://…" comes once the fleet is serving (other camsim:
			// lines come before it).
			if !served && strings.HasPrefix(sc.Text(), "camsim:") && strings.Contains(sc.Text(), " cameras at rtsp://") {
				served = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
		return sim.Process.Pid, stop, nil
	case <-ended:
		stop()
		return 0, nil, fmt.Errorf("camsim exited before serving (%v): %s", sim.ProcessState, tail.String())
	case <-time.After(5 * time.Minute):
		stop()
		return 0, nil, fmt.Errorf("camsim did not start within 5 minutes: %s", tail.String())
	}
}

// tailWriter keeps the last 2 KB written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if n := len(t.buf); n > 2048 {
		t.buf = append(t.buf[:0], t.buf[n-2048:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
