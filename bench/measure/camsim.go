package measure

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// StartCamsim runs the camsim binary with args (GOGC 100 whatever the caller uses) and waits
// until it serves; stop ends it.
func StartCamsim(bin string, stderr io.Writer, args ...string) (pid int, stop func(), err error) {
	sim := exec.Command(bin, args...)
	sim.Env = append(os.Environ(), "GOGC=100")
	out, _ := sim.StdoutPipe()
	sim.Stderr = stderr
	if err := sim.Start(); err != nil {
		return 0, nil, err
	}
	stop = func() {
		_ = sim.Process.Signal(syscall.SIGINT)
		_ = sim.Wait()
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// "camsim: N cameras at rtsp://…" comes once the fleet is serving (other camsim:
			// lines come before it).
			if strings.HasPrefix(sc.Text(), "camsim:") && strings.Contains(sc.Text(), " cameras at rtsp://") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
		return sim.Process.Pid, stop, nil
	case <-time.After(5 * time.Minute):
		stop()
		return 0, nil, fmt.Errorf("camsim did not start within 5 minutes")
	}
}
