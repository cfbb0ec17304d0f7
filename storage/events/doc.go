// Package events is the event store: PostgreSQL (pgx) with day partitions, a batch writer that
// consumes the bus durably (COPY in batches, acknowledged after commit, idempotent on event id),
// retention by dropping partitions, and the queries behind GET /v1/events.
package events
