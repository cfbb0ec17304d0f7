// Package audit is vigil's tamper-evident audit chain: every search, export, door decision and
// admin change is appended as a row that carries the hash of the row before it, committed in
// groups; Verify walks the chain and checks it against an anchor kept outside the database.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Entry is one audit record.
type Entry struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`  // principal name
	Role    string          `json:"role"`   // its role at the time
	Action  string          `json:"action"` // e.g. search.faces, export.create, door.decision
	Reason  string          `json:"reason,omitempty"`
	Detail  json.RawMessage `json:"detail"`            // the query, the decision…
	Results *int            `json:"results,omitempty"` // result count, where there is one
}

// Chain appends entries to the hash-chained audit table. Appends from many goroutines are
// committed together (group commit): each Append returns once its entry is durable.
type Chain struct {
	pool   *pgxpool.Pool
	anchor string // file holding the newest seq and hash, outside the database; "" for none

	mu      sync.Mutex
	queue   []*pending
	flushMu sync.Mutex
}

type pending struct {
	e    Entry
	seq  int64
	err  error
	done chan struct{}
}

// auditLock serialises appenders across nodes.
const auditLock = 7_117_105_108_001

// New returns an appender. anchorPath, when set, is a file vigil rewrites after each commit
// with the chain's newest seq and hash, so verify can tell when the newest rows were deleted
// together with audit_head.
func New(pool *pgxpool.Pool, anchorPath string) *Chain {
	return &Chain{pool: pool, anchor: anchorPath}
}

// Append writes e (its Seq and, when zero, its Time are set here) and returns its seq.
func (a *Chain) Append(ctx context.Context, e Entry) (int64, error) {
	if e.Actor == "" || e.Action == "" {
		return 0, errors.New("audit: entry needs an actor and an action")
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage(`{}`)
	} else if !json.Valid(e.Detail) {
		return 0, errors.New("audit: detail is not JSON")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond) // PostgreSQL's precision: the hash must survive the round trip
	p := &pending{e: e, done: make(chan struct{})}
	a.mu.Lock()
	a.queue = append(a.queue, p)
	a.mu.Unlock()

	// One flusher at a time; while it writes, new entries queue up for the next flush.
	a.flushMu.Lock()
	select {
	case <-p.done: // a previous flusher took ours
	default:
		a.mu.Lock()
		batch := a.queue
		a.queue = nil
		a.mu.Unlock()
		err := a.write(ctx, batch)
		for _, q := range batch {
			if err != nil {
				q.err = err
			}
			close(q.done)
		}
	}
	a.flushMu.Unlock()
	<-p.done
	return p.seq, p.err
}

func (a *Chain) write(ctx context.Context, batch []*pending) error {
	var headSeq int64
	var headHash []byte
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLock)); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head`).Scan(&headSeq, &headHash)
		if errors.Is(err, pgx.ErrNoRows) {
			headSeq, headHash, err = 0, make([]byte, sha256.Size), nil
		}
		if err != nil {
			return err
		}
		rows := make([][]any, len(batch))
		for i, p := range batch {
			headSeq++
			p.e.Seq = headSeq
			h := chainHash(headHash, &p.e)
			var results *int32
			if p.e.Results != nil {
				v := int32(*p.e.Results)
				results = &v
			}
			rows[i] = []any{p.e.Seq, p.e.Time, p.e.Actor, p.e.Role, p.e.Action, p.e.Reason, string(p.e.Detail), results, headHash, h}
			headHash = h
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit"}, []string{"seq", "time", "actor", "role", "action", "reason", "detail", "result_count", "prev_hash", "hash"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_head (seq, hash) VALUES ($1, $2) ON CONFLICT (one) DO UPDATE SET seq = $1, hash = $2`, headSeq, headHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	for _, p := range batch {
		p.seq = p.e.Seq
	}
	if a.anchor != "" {
		if err := writeAnchor(a.anchor, headSeq, headHash); err != nil {
			return fmt.Errorf("audit: committed, but the anchor file: %w", err)
		}
	}
	return nil
}

// chainHash is SHA-256 over the previous hash and every field of e, each length-prefixed.
func chainHash(prev []byte, e *Entry) []byte {
	h := sha256.New()
	h.Write(prev)
	var n [8]byte
	put := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	str := func(s string) {
		put(int64(len(s)))
		h.Write([]byte(s))
	}
	put(e.Seq)
	put(e.Time.UnixMicro())
	str(e.Actor)
	str(e.Role)
	str(e.Action)
	str(e.Reason)
	str(string(e.Detail))
	if e.Results != nil {
		put(int64(*e.Results))
	} else {
		put(-1)
	}
	return h.Sum(nil)
}

func writeAnchor(path string, seq int64, hash []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-anchor-*")
	if err != nil {
		return err
	}
	fmt.Fprintf(tmp, "%d %s\n", seq, hex.EncodeToString(hash))
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readAnchor(path string) (int64, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, nil, fmt.Errorf("audit anchor %s: malformed", path)
	}
	seq, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("audit anchor %s: %w", path, err)
	}
	h, err := hex.DecodeString(f[1])
	return seq, h, err
}
