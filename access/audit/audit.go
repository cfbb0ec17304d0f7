// Package audit is vigil's tamper-evident audit chain: every search, export, door decision and
// admin change is appended as a row that carries the hash of the row before it, committed in
// groups; Verify walks the chain and checks it against an anchor kept outside the database.
package audit

import (
	"bytes"
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
//
// Every append also checks the anchor: the newest row this process knows was written (from the
// anchor file at start, then from its own appends) must still be in the chain with the same
// hash. A chain whose tail was cut or rewritten since is refused (ErrTampered): nothing more is
// appended to it, so nothing audited is given (door decisions, searches) until it is looked at.
type Chain struct {
	pool   *pgxpool.Pool
	anchor string // file holding the newest seq and hash, outside the database; "" for none

	mu      sync.Mutex
	queue   []*pending
	flushMu sync.Mutex

	anchorMu   sync.Mutex
	anchorSeq  int64
	anchorHash []byte
	adopt      string // why the anchor file could not be read at start; "" once it is
}

// ErrTampered means rows the chain had are gone or changed: an append is refused.
var ErrTampered = errors.New("audit: the chain was cut or rewritten (run vigil audit verify)")

// flushTimeout bounds one group commit. A flush runs on its own context, not on the context of the
// request that happened to start it: one client going away must not fail the others' entries.
const flushTimeout = 15 * time.Second

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
//
// An anchor file that is missing or unreadable while the chain has rows (a new node's data
// folder, or someone deleted it) is adopted at the first append, in the open: the chain itself
// gets an audit.anchor.adopted row naming the head it was re-made at and why, which verify
// reports. Rows before that point are then only as safe as the signed checkpoints.
func New(pool *pgxpool.Pool, anchorPath string) *Chain {
	c := &Chain{pool: pool, anchor: anchorPath}
	if anchorPath != "" {
		seq, hash, err := readAnchor(anchorPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
			c.adopt = "the anchor file is missing"
		case err != nil:
			c.adopt = err.Error()
		default:
			c.anchorSeq, c.anchorHash = seq, hash
		}
	}
	return c
}

// AnchorAdopted is the action of the row that records a re-made anchor.
const AnchorAdopted = "audit.anchor.adopted"

// check readies an entry: actor, action and JSON detail required; Time set when zero, to
// PostgreSQL's precision (the hash must survive the round trip).
func check(e *Entry) error {
	if e.Actor == "" || e.Action == "" {
		return errors.New("audit: entry needs an actor and an action")
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage(`{}`)
	} else if !json.Valid(e.Detail) {
		return errors.New("audit: detail is not JSON")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	return nil
}

// Append writes e (its Seq and, when zero, its Time are set here) and returns its seq once it is
// committed. ctx bounds the wait, not the commit: the entry is written with the others queued.
func (a *Chain) Append(ctx context.Context, e Entry) (int64, error) {
	if err := check(&e); err != nil {
		return 0, err
	}
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
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		err := a.write(fctx, batch)
		cancel()
		for _, q := range batch {
			if err != nil {
				q.err = err
			}
			close(q.done)
		}
	}
	a.flushMu.Unlock()
	select {
	case <-p.done:
		return p.seq, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// AppendAll writes entries in one transaction, all or none (their Seq and Time set as by
// Append), and returns their seqs: a batch of a controller's offline decisions or a minute of
// refusals is one commit, not thousands.
func (a *Chain) AppendAll(ctx context.Context, entries []Entry) ([]int64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	batch := make([]*pending, len(entries))
	for i := range entries {
		if err := check(&entries[i]); err != nil {
			return nil, err
		}
		batch[i] = &pending{e: entries[i]}
	}
	if err := a.write(ctx, batch); err != nil {
		return nil, err
	}
	seqs := make([]int64, len(batch))
	for i, p := range batch {
		seqs[i] = p.seq
	}
	return seqs, nil
}

// Notifying wraps a change's write so that its transaction also tells every process listening
// on channel (PostgreSQL NOTIFY, delivered only if it commits): how other nodes and the tools
// learn of admin writes.
func Notifying(ctx context.Context, channel string, fn func(tx pgx.Tx) error) func(tx pgx.Tx) error {
	return func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, channel)
		return err
	}
}

// Change runs fn and appends e in one transaction, so that a change and its audit row commit
// (or roll back) together; it returns e's seq. fn may fill e.Detail in through detail, which is
// read after fn: pass nil when the entry is complete.
func (a *Chain) Change(ctx context.Context, e Entry, detail func() json.RawMessage, fn func(tx pgx.Tx) error) (int64, error) {
	var headSeq int64
	var headHash []byte
	p := &pending{}
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) (err error) {
		if err := fn(tx); err != nil {
			return err
		}
		p.e = e
		if detail != nil {
			p.e.Detail = detail()
		}
		if err := check(&p.e); err != nil {
			return err
		}
		headSeq, headHash, err = a.appendIn(ctx, tx, []*pending{p})
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := a.setAnchor(headSeq, headHash); err != nil {
		return p.e.Seq, fmt.Errorf("audit: committed, but the anchor file: %w", err)
	}
	return p.e.Seq, nil
}

// setAnchor records a committed head, in memory and in the anchor file.
func (a *Chain) setAnchor(seq int64, hash []byte) error {
	a.anchorMu.Lock()
	defer a.anchorMu.Unlock()
	if seq < a.anchorSeq {
		return nil // a later commit got here first
	}
	a.anchorSeq, a.anchorHash = seq, hash
	if a.anchor == "" {
		return nil
	}
	if err := writeAnchor(a.anchor, seq, hash); err != nil {
		return err
	}
	a.adopt = ""
	return nil
}

func (a *Chain) write(ctx context.Context, batch []*pending) error {
	var headSeq int64
	var headHash []byte
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) (err error) {
		headSeq, headHash, err = a.appendIn(ctx, tx, batch)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	for _, p := range batch {
		p.seq = p.e.Seq
	}
	if err := a.setAnchor(headSeq, headHash); err != nil {
		return fmt.Errorf("audit: committed, but the anchor file: %w", err)
	}
	return nil
}

// appendIn appends batch in tx: the chain's lock, the anchor check, the rows, the new head.
func (a *Chain) appendIn(ctx context.Context, tx pgx.Tx, batch []*pending) (int64, []byte, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(auditLock)); err != nil {
		return 0, nil, err
	}
	var headSeq int64
	var headHash []byte
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head`).Scan(&headSeq, &headHash)
	if errors.Is(err, pgx.ErrNoRows) {
		headSeq, headHash, err = 0, make([]byte, sha256.Size), nil
	}
	if err != nil {
		return 0, nil, err
	}
	if err := a.checkAnchor(ctx, tx, headSeq); err != nil {
		return 0, nil, err
	}
	batch = a.adoption(headSeq, batch)
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
		return 0, nil, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_head (seq, hash) VALUES ($1, $2) ON CONFLICT (one) DO UPDATE SET seq = $1, hash = $2`, headSeq, headHash)
	return headSeq, headHash, err
}

// adoption puts the audit.anchor.adopted row before batch when the anchor file could not be read
// at start and the chain is not empty.
func (a *Chain) adoption(headSeq int64, batch []*pending) []*pending {
	a.anchorMu.Lock()
	why := a.adopt
	a.anchorMu.Unlock()
	if why == "" || headSeq == 0 {
		return batch
	}
	detail, _ := json.Marshal(map[string]any{"head": headSeq, "why": why, "file": a.anchor})
	p := &pending{e: Entry{Actor: "vigil", Role: "system", Action: AnchorAdopted, Detail: detail}}
	check(&p.e)
	return append([]*pending{p}, batch...)
}

// checkAnchor refuses to extend a chain that no longer holds the newest row this process knew.
func (a *Chain) checkAnchor(ctx context.Context, tx pgx.Tx, headSeq int64) error {
	a.anchorMu.Lock()
	seq, hash := a.anchorSeq, a.anchorHash
	a.anchorMu.Unlock()
	if seq == 0 {
		return nil
	}
	if headSeq < seq {
		return fmt.Errorf("%w: the head is row %d, row %d was written", ErrTampered, headSeq, seq)
	}
	var got []byte
	err := tx.QueryRow(ctx, `SELECT hash FROM audit WHERE seq = $1`, seq).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: row %d is gone", ErrTampered, seq)
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, hash) {
		return fmt.Errorf("%w: row %d was rewritten", ErrTampered, seq)
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
	// Synced before and after the rename: a crash leaves the old anchor or the new, never an
	// empty file.
	_, err = fmt.Fprintf(tmp, "%d %s\n", seq, hex.EncodeToString(hash))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
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
