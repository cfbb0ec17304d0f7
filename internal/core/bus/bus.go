// Package bus is vigil's event bus: NATS with JetStream, embedded in the process by default or an
// external server by URL. Events are published to a JetStream stream (durable, acknowledged);
// live viewers subscribe with plain NATS subscriptions.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/core/event"
)

// Stream is the JetStream stream holding events (subjects event.SubjectPrefix.>).
const Stream = "VIGIL_EVENTS"

// Config selects the bus.
type Config struct {
	// URL of an external NATS server; empty embeds one.
	URL string
	// StoreDir is where the embedded server keeps JetStream data; empty keeps it in memory.
	StoreDir string
	// MaxAge bounds how long events stay in the stream. Default 24 h (the event store is the
	// archive; the stream is a buffer).
	MaxAge time.Duration
	// Replicas is how many servers of a NATS cluster keep the stream and the buckets made on
	// this bus (Replicas()). Default 1.
	Replicas int
}

// Bus is a connection (and, embedded, the server behind it).
type Bus struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	// storage is where JetStream data is kept (Storage).
	storage  jetstream.StorageType
	replicas int
	tmp      string // the embedded server's own folder when none was given (removed by Close)
}

// Open starts the embedded server when cfg.URL is empty, connects, and makes sure the events
// stream exists.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	b := &Bus{log: log.With("component", "bus")}
	url := cfg.URL
	if url == "" {
		opts := &server.Options{
			ServerName: "vigil-embedded", DontListen: true, JetStream: true,
			StoreDir: cfg.StoreDir, NoSigs: true, NoLog: true,
		}
		if cfg.StoreDir == "" {
			opts.JetStreamMaxStore = 1 << 30
			// A folder of its own: without one the server keeps its metadata under the system's
			// temporary folder, shared by every embedded bus of the machine, and one process's
			// streams come back to haunt another's.
			dir, err := os.MkdirTemp("", "vigil-bus-")
			if err != nil {
				return nil, fmt.Errorf("bus: embedded NATS: %w", err)
			}
			opts.StoreDir, b.tmp = dir, dir
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("bus: embedded NATS: %w", err)
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			srv.Shutdown()
			b.Close()
			return nil, errors.New("bus: embedded NATS did not start within 10 s")
		}
		b.srv = srv
	}
	var opts []nats.Option
	opts = append(opts, nats.Name("vigil"), nats.MaxReconnects(-1))
	if b.srv != nil {
		opts = append(opts, nats.InProcessServer(b.srv))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc); err != nil {
		b.Close()
		return nil, err
	}
	maxAge := cfg.MaxAge
	if maxAge == 0 {
		maxAge = 24 * time.Hour
	}
	storage := jetstream.FileStorage
	if b.srv != nil && cfg.StoreDir == "" {
		storage = jetstream.MemoryStorage
	}
	b.storage = storage
	b.replicas = max(cfg.Replicas, 1)
	_, err = WhileStarting(ctx, func() (jetstream.Stream, error) {
		return b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: Stream, Subjects: []string{event.SubjectPrefix + ".>"}, MaxAge: maxAge, Storage: storage, Replicas: b.replicas,
			Duplicates: 2 * time.Minute, // publishes carry the event id as Nats-Msg-Id: a retry is not a second event
		})
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("bus: events stream: %w", err)
	}
	return b, nil
}

// Publish stores one event durably and waits for the acknowledgement. id de-duplicates retries.
func (b *Bus) Publish(ctx context.Context, subject, id string, data []byte) error {
	_, err := b.js.Publish(ctx, subject, data, jetstream.WithMsgID(id))
	return err
}

// Broadcast sends data to every subscriber of subject now connected, without storing it (door
// state between nodes: what matters only for seconds).
func (b *Bus) Broadcast(subject string, data []byte) error {
	return b.nc.Publish(subject, data)
}

// Subscribe delivers messages on subject (wildcards allowed) to fn until the returned func is
// called. Live viewers use this: no durability, no replay.
func (b *Bus) Subscribe(subject string, fn func(subject string, data []byte)) (func(), error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Subject, m.Data) })
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Ready reports nil while the connection to NATS is up.
func (b *Bus) Ready() error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("NATS connection %s", strings.ToLower(st.String()))
	}
	return nil
}

// Storage is where this bus keeps JetStream data: memory for an embedded bus without a store
// directory, files otherwise. Buckets and streams vigil makes use the same.
func (b *Bus) Storage() jetstream.StorageType { return b.storage }

// Replicas is how many servers keep each stream and bucket made on this bus.
func (b *Bus) Replicas() int { return b.replicas }

// JetStream exposes the stream to durable consumers (the event store).
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.nc != nil {
		_ = b.nc.Drain()
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	if b.tmp != "" {
		_ = os.RemoveAll(b.tmp)
	}
}

// DeleteMatching deletes from the events stream every message on subject (wildcards allowed)
// for which match reports true, and returns how many it deleted: erasure must not leave a
// person's events on the bus, where a consumer could still store or index them. It reads the
// stream as it is when called, up to its last message.
func (b *Bus) DeleteMatching(ctx context.Context, subject string, match func(data []byte) bool) (int, error) {
	st, err := b.js.Stream(ctx, Stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return 0, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return deleted, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return deleted, err
			}
			if match(m.Data()) {
				if err := st.DeleteMsg(ctx, md.Sequence.Stream); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					return deleted, err
				}
				deleted++
			}
			if md.Sequence.Stream >= last {
				return deleted, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return deleted, err
		}
		if n == 0 { // nothing more on that subject up to the end
			return deleted, nil
		}
	}
}
