// Package measure reads CPU time and memory of processes for the benchmark commands, and holds
// the small pieces they share (camsim, test beds, a publisher tee).
package measure

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// SelfCPU is this process's user + system CPU time.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tick is the kernel's clock tick as /proc counts CPU time (USER_HZ, 100 on Linux).
const tick = 10 * time.Millisecond

// ProcCPU reads utime+stime of pid from /proc (clock ticks).
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * tick
}

// Steal is the time the machine's virtual CPUs were ready to run but the hypervisor ran
// something else (/proc/stat's steal, all CPUs together; 0 where it is not told): on a shared
// virtual machine the same build's figures drift with it between windows.
func Steal() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	st, _ := strconv.ParseInt(f[8], 10, 64)
	return time.Duration(st) * tick
}

// RSSKB is pid's resident set in KiB.
func RSSKB(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return v
		}
	}
	return 0
}

// CommandCPU sums the CPU time of every live process whose command name is comm (e.g. all of a
// PostgreSQL server's processes). Processes that exit between two readings take theirs along, so
// read it around phases in which the set of processes stays put.
func CommandCPU(comm string) time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var total time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(b)) == comm {
			total += ProcCPU(pid)
		}
	}
	return total
}

// WaitReady waits until a vigil node at base (http://host:port) answers /readyz with 200: every
// component started (the port accepts connections earlier, answering 503 while it starts).
func WaitReady(base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if r, err := http.Get(base + "/readyz"); err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
			last = strings.TrimSpace(string(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vigil at %s not ready within %s: %s", base, timeout, last)
}

// Publisher is what the pipeline publishes its events to (pipeline.Publisher).
type Publisher interface {
	Publish(ctx context.Context, e *event.Event) error
}

// Tee publishes every event to each publisher in turn: a bench's own collector beside the bus.
type Tee []Publisher

// Publish implements Publisher; it stops at the first error.
func (t Tee) Publish(ctx context.Context, e *event.Event) error {
	for _, p := range t {
		if err := p.Publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
