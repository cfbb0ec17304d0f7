package audit

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Filter selects audit entries, for a privacy officer's review. Empty fields match all.
type Filter struct {
	Actor string // exactly
	// Action matches an action or, ending in ".", every action under it ("search." for all
	// searches).
	Action string
	// Subject is a person, a plate or a door: entries whose detail names it (as person,
	// person_id, plate, door or the query q) — "who searched for this person, when and why".
	Subject  string
	From, To time.Time
	Before   int64 // entries with seq below this (paging back); 0 from the newest
	Limit    int   // default 100, at most 1000
}

// Query returns entries newest first.
func Query(ctx context.Context, pool *pgxpool.Pool, f Filter) ([]Entry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.To.IsZero() {
		f.To = time.Now().Add(time.Minute)
	}
	rows, err := pool.Query(ctx, `SELECT seq, time, actor, role, action, reason, detail, result_count FROM audit
		WHERE time >= $1 AND time < $2
		  AND ($3 = '' OR actor = $3)
		  AND ($4 = '' OR action = $4 OR (right($4, 1) = '.' AND starts_with(action, $4)))
		  AND ($5 = '' OR (detail::jsonb ->> 'person' = $5 OR detail::jsonb ->> 'person_id' = $5
		       OR detail::jsonb ->> 'plate' = $5 OR detail::jsonb ->> 'door' = $5 OR detail::jsonb ->> 'q' = $5
		       OR detail::jsonb -> 'person_ids' ? $5))
		  AND ($6 = 0 OR seq < $6)
		ORDER BY seq DESC LIMIT $7`, f.From, f.To, f.Actor, f.Action, f.Subject, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var detail string
		var results *int32
		err := r.Scan(&e.Seq, &e.Time, &e.Actor, &e.Role, &e.Action, &e.Reason, &detail, &results)
		e.Detail = json.RawMessage(detail)
		if results != nil {
			n := int(*results)
			e.Results = &n
		}
		return e, err
	})
}
