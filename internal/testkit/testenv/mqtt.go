package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MQTTBroker is a real MQTT broker for tests: Mosquitto (Debian package mosquitto).
type MQTTBroker struct {
	URL  string // tcp://127.0.0.1:PORT
	Addr string
	conf string
	cmd  *exec.Cmd
	t    testing.TB
}

// StartMQTT starts Mosquitto on a free loopback port, anonymous access, no persistence; it stops
// with the test. Without mosquitto it is Missing.
func StartMQTT(t testing.TB) *MQTTBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/mosquitto"); e == nil {
			bin = "/usr/sbin/mosquitto"
		} else {
			Missing(t, "mosquitto is not installed")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", addr.Port)
	if os.Getuid() == 0 {
		body += "user root\n" // else it drops to a "mosquitto" user that may not exist
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &MQTTBroker{URL: "tcp://" + addr.String(), Addr: addr.String(), conf: conf, t: t}
	b.cmd = exec.Command(bin, "-c", conf)
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	for range 100 {
		if c, err := net.Dial("tcp", b.Addr); err == nil {
			c.Close()
			return b
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mosquitto did not listen on %s", b.Addr)
	return nil
}

// Stop kills the broker.
func (b *MQTTBroker) Stop() {
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
		b.cmd = nil
	}
}
