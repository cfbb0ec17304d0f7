package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// S3 Server is a real S3 service for tests: versitygw (go install
// github.com/versity/versitygw/cmd/versitygw@v1.8.0) serving a folder.
type S3Server struct {
	Endpoint          string
	AccessKey, Secret string
	dir, bin          string
	cmd               *exec.Cmd
	t                 testing.TB
}

// VersityGW returns the versitygw binary, or "".
func VersityGW() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		if p := filepath.Join(gp, "bin", "versitygw"); fileExists(p) {
			return p
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, "go", "bin", "versitygw"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StartS3 starts versitygw on a free port over a temporary folder; it stops with the test.
// Without versitygw it is Missing.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin := VersityGW()
	if bin == "" {
		Missing(t, "versitygw is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &S3Server{Endpoint: addr, AccessKey: "vigiltest", Secret: "vigiltestsecret", dir: t.TempDir(), bin: bin, t: t}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server on its address and folder and waits until it accepts connections.
func (s *S3Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--access", s.AccessKey, "--secret", s.Secret, "--port", s.Endpoint, "posix", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", s.Endpoint); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("versitygw did not listen on %s", s.Endpoint)
}

// Stop kills the server (an outage, as the object store sees it).
func (s *S3Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}
