package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/storage/blob"
)

// WriterOptions tune the batch writer.
type WriterOptions struct {
	// Stream is the JetStream stream of events; Durable the consumer's name.
	Stream, Durable string
	// Batch is the most events per transaction. Default 2000.
	Batch int
	// BatchBytes bounds a batch's bytes (events carry their snapshots). Default 8 MiB: a whole
	// batch must fit the client's pending limits, or it is dropped as a slow consumer's and
	// comes back only after AckWait.
	BatchBytes int
	// MaxWait is how long a batch waits to fill. Default 200 ms.
	MaxWait time.Duration
	// AckWait is how long the bus waits for a batch's acknowledgement before it redelivers it
	// (after a crash, the in-flight batch comes back after this). Default 30 s.
	AckWait time.Duration
	// Writers is how many batches are written at once, each in its own transaction. Default 2:
	// one batch's COPY overlaps the next one's encoding and commit.
	Writers int
}

// Writer moves events from the bus into PostgreSQL: a durable consumer, batches written with COPY
// in one transaction, acknowledged only after commit. A crash or outage between fetch and commit
// leaves the batch unacknowledged; it is redelivered and inserted once (Insert is idempotent).
type Writer struct {
	store *Store
	js    jetstream.JetStream
	blobs blob.Store
	opts  WriterOptions
	log   *slog.Logger

	written, skipped, bad, retries prometheus.Counter

	consumer chan jetstream.Consumer // the durable consumer, once Run has made it
}

// NewWriter returns a writer; reg may be nil.
func NewWriter(store *Store, js jetstream.JetStream, blobs blob.Store, opts WriterOptions, reg prometheus.Registerer, log *slog.Logger) *Writer {
	if opts.Batch <= 0 {
		opts.Batch = 2000
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 200 * time.Millisecond
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 8 << 20
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.Writers <= 0 {
		opts.Writers = 2
	}
	if opts.Durable == "" {
		opts.Durable = "vigil-event-store"
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_store_" + name, Help: help})
	}
	w := &Writer{store: store, js: js, blobs: blobs, opts: opts, log: log.With("component", "event-store"), consumer: make(chan jetstream.Consumer, 1),
		written: c("events_written_total", "Events inserted into PostgreSQL."),
		skipped: c("events_duplicate_total", "Redelivered events already stored (skipped)."),
		bad:     c("events_malformed_total", "Bus messages that are not storable events (acknowledged, not stored)."),
		retries: c("write_retries_total", "Batches retried after a database or blob store error."),
	}
	if reg != nil {
		reg.MustRegister(w.written, w.skipped, w.bad, w.retries)
	}
	return w
}

// Run consumes until ctx ends.
func (w *Writer) Run(ctx context.Context) error {
	cons, err := w.js.CreateOrUpdateConsumer(ctx, w.opts.Stream, jetstream.ConsumerConfig{
		// Explicit acks, one per message: with AckAll, a restarted writer acknowledging newer
		// messages would also acknowledge the batch a crashed writer had in flight, unstored.
		Durable: w.opts.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.opts.AckWait,
		MaxAckPending: (w.opts.Writers + 3) * w.opts.Batch, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return err
	}
	w.consumer <- cons
	// Fetching and decoding overlap writing: one goroutine pulls and decodes the next batch while
	// the writers store the ones before it.
	batches := make(chan batch, 2)
	go func() {
		defer close(batches)
		for ctx.Err() == nil {
			fetched, err := cons.Fetch(w.opts.Batch, jetstream.FetchMaxWait(w.opts.MaxWait), jetstream.FetchMaxBytes(w.opts.BatchBytes))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				w.log.Warn("fetch from the bus failed", "err", err)
				sleep(ctx, time.Second)
				continue
			}
			b := w.decode(fetched.Messages())
			if len(b.msgs) == 0 {
				continue
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < w.opts.Writers; i++ {
		wg.Go(func() {
			for b := range batches {
				w.write(ctx, b)
			}
		})
	}
	wg.Wait()
	return nil
}

// Drain waits until every event on the bus has been stored and acknowledged: call it once the
// publishers have stopped, then end Run. It returns ctx's error when that does not happen in
// time; what is left stays on the bus (durable, unacknowledged) and is stored at the next start.
func (w *Writer) Drain(ctx context.Context) error {
	var cons jetstream.Consumer
	select {
	case cons = <-w.consumer:
		w.consumer <- cons
	case <-ctx.Done():
		return ctx.Err()
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return fmt.Errorf("%w: %d events not yet stored, %d being stored", ctx.Err(), info.NumPending, info.NumAckPending)
		case <-t.C:
		}
	}
}

// batch is a fetch's storable events and their messages.
type batch struct {
	recs []*event.Event
	msgs []jetstream.Msg
}

// decode reads a fetch's messages; malformed ones are terminated (never redelivered) and counted.
func (w *Writer) decode(msgs <-chan jetstream.Msg) batch {
	var b batch
	for m := range msgs {
		r, err := Decode(m.Data())
		if err != nil {
			w.bad.Inc()
			w.log.Warn("dropping malformed bus message", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		b.recs = append(b.recs, r)
		b.msgs = append(b.msgs, m)
	}
	return b
}

// write stores one batch, retrying until it is committed or ctx ends, then acknowledges it.
func (w *Writer) write(ctx context.Context, b batch) {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := w.try(ctx, b.recs)
		if err == nil {
			w.written.Add(float64(n))
			w.skipped.Add(float64(int64(len(b.recs)) - n))
			for _, m := range b.msgs {
				_ = m.Ack()
			}
			return
		}
		if ctx.Err() != nil {
			return // unacknowledged: redelivered after restart
		}
		w.retries.Inc()
		if attempt == 1 || attempt%10 == 0 {
			w.log.Warn("storing events failed; retrying (nothing is acknowledged until stored)", "events", len(b.recs), "attempt", attempt, "err", err)
		}
		// Keep the messages ours while we wait.
		for _, m := range b.msgs {
			_ = m.InProgress()
		}
		sleep(ctx, wait)
		wait = min(wait*2, 10*time.Second)
	}
}

func (w *Writer) try(ctx context.Context, recs []*event.Event) (int64, error) {
	keys := make(map[*event.Event]string, len(recs))
	var withSnap []*event.Event
	for _, r := range recs {
		if len(r.Snapshot) > 0 && w.blobs != nil {
			withSnap = append(withSnap, r)
			keys[r] = SnapshotKey(r)
		}
	}
	// Snapshots are written by a few goroutines at once: one object per event costs a handful of
	// file or HTTP operations each, which would otherwise serialise the batch.
	if len(withSnap) > 0 {
		const workers = 8
		errs := make(chan error, workers)
		next := make(chan *event.Event)
		for i := 0; i < workers; i++ {
			go func() {
				var first error
				for r := range next {
					if first == nil {
						first = w.blobs.Put(ctx, keys[r], r.Snapshot, "image/jpeg")
					}
				}
				errs <- first
			}()
		}
		for _, r := range withSnap {
			next <- r
		}
		close(next)
		var err error
		for i := 0; i < workers; i++ {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		if err != nil {
			return 0, err
		}
	}
	return w.store.Insert(ctx, recs, func(r *event.Event) string { return keys[r] })
}

// SnapshotKey is where an event's best shot is stored: one object per event, by day.
func SnapshotKey(r *event.Event) string {
	return "snapshots/" + r.Time.UTC().Format("2006/01/02") + "/" + r.ID + ".jpg"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
