package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/api"
	"github.com/vigil-oss/vigil/cluster"
)

// joinSite runs a NATS server with JetStream on a loopback TCP port, as a site's bus, and makes
// the bench's node one of the site: nonces claimed in its KV bucket, door state shared.
func joinSite(ctx context.Context, e *access.Engine, d *api.Deps) (func(), error) {
	dir, err := os.MkdirTemp("", "vigil-bench-doors-nats-")
	if err != nil {
		return nil, err
	}
	// File storage, as every node of a site with an external bus keeps its buckets.
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("nats: not ready")
	}
	siteBusURL = srv.ClientURL()
	nc, err := nats.Connect(siteBusURL)
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	js, _ := jetstream.New(nc)
	nonces, err := cluster.OpenNonces(ctx, js, cluster.Store{Storage: jetstream.FileStorage}, 2*access.SkewWindow)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, err
	}
	d.SharedNonces = nonces.Claim
	unshare, err := e.Share(access.Peers{Self: "bench", Claim: nonces.Claim,
		Publish: nc.Publish,
		Subscribe: func(subject string, fn func(string, []byte)) (func(), error) {
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Subject, m.Data) })
			if err != nil {
				return nil, err
			}
			return func() { _ = sub.Unsubscribe() }, nil
		}})
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, err
	}
	return func() {
		unshare()
		nc.Close()
		srv.Shutdown()
		os.RemoveAll(dir)
	}, nil
}
