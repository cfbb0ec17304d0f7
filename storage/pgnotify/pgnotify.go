// Package pgnotify listens on a PostgreSQL notification channel (LISTEN/NOTIFY) through a pool,
// and keeps listening across lost connections.
package pgnotify

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Handlers say what a listener does.
type Handlers struct {
	// OnListen runs on the listening connection each time it starts listening (at first and
	// after a reconnection): the place to catch up on what was missed while not listening.
	OnListen func(ctx context.Context, conn *pgxpool.Conn) error
	// OnNotify gets each notification's payload.
	OnNotify func(payload string)
	// OnIdle runs when Idle passes without a notification (with Idle set).
	OnIdle func()
	// Idle is how long to wait for a notification before OnIdle; 0 waits for ever.
	Idle time.Duration
}

// Listen listens on channel until ctx ends. A lost connection is logged (what says what the
// listener is for) and retried every 5 s.
func Listen(ctx context.Context, pool *pgxpool.Pool, channel, what string, log *slog.Logger, h Handlers) {
	for ctx.Err() == nil {
		err := listenOnce(ctx, pool, channel, h)
		if err != nil && ctx.Err() == nil {
			log.Warn(what+" failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}
}

func listenOnce(ctx context.Context, pool *pgxpool.Pool, channel string, h Handlers) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		return err
	}
	if h.OnListen != nil {
		if err := h.OnListen(ctx, conn); err != nil {
			return err
		}
	}
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if h.Idle > 0 {
			wctx, cancel = context.WithTimeout(ctx, h.Idle)
		}
		n, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			if h.OnNotify != nil {
				h.OnNotify(n.Payload)
			}
		case errors.Is(err, context.DeadlineExceeded):
			if h.OnIdle != nil {
				h.OnIdle()
			}
		default:
			return err
		}
	}
}
