package testenv

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartNATS runs a NATS server with JetStream on a free loopback port (the server library vigil
// embeds, listening on TCP as a site's external bus would), for tests of several nodes sharing
// one bus. It stops with the test.
func StartNATS(t testing.TB) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats: not ready within 10 s")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}
