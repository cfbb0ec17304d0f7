package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Report is what Verify found.
type Report struct {
	Rows     int64
	Problems []string // empty: the chain is intact
	// Adopted lists the anchor's re-makings (audit.anchor.adopted rows): from each, the anchor
	// vouches only for the rows after it.
	Adopted []string
}

// OK reports whether the chain verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// VerifyOptions say what the chain is checked against beyond itself.
type VerifyOptions struct {
	// Anchor is the file outside the database holding the newest seq and hash (serve rewrites it
	// after each commit). When set and missing while the chain has rows, verify fails.
	Anchor string
	// Keys are the trusted checkpoint keys. With keys, every stored checkpoint must carry a valid
	// signature by one of them and name a row the chain still holds with that hash.
	Keys []ed25519.PublicKey
	// Progress, when set, gets the rows checked so far.
	Progress func(rows int64)
}

// trustedCheckpoints loads the checkpoints signed by one of keys, by row; any other is a problem.
func trustedCheckpoints(ctx context.Context, pool *pgxpool.Pool, keys []ed25519.PublicKey, problem func(string, ...any)) (map[int64][]Checkpoint, error) {
	cps := map[int64][]Checkpoint{}
	if len(keys) == 0 {
		return cps, nil
	}
	all, err := checkpoints(ctx, pool)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if err := c.verifySignature(keys); err != nil {
			problem("the checkpoint of row %d (%s) is not to be trusted: %v", c.Seq, c.At.Format(time.RFC3339), err)
			continue
		}
		cps[c.Seq] = append(cps[c.Seq], c)
	}
	return cps, nil
}

// Verify walks the whole chain: every row's hash recomputed, every link to the previous row,
// sequence numbers without gaps, the newest row against audit_head, against the anchor outside
// the database, and against the signed checkpoints.
func Verify(ctx context.Context, pool *pgxpool.Pool, o VerifyOptions) (*Report, error) {
	anchorPath, progress := o.Anchor, o.Progress
	rep := &Report{}
	problem := func(format string, args ...any) {
		if len(rep.Problems) < 100 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
	}
	cps, err := trustedCheckpoints(ctx, pool, o.Keys, problem)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT seq, time, actor, role, action, reason, detail, result_count, prev_hash, hash FROM audit ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	prev := make([]byte, sha256.Size)
	var expect int64 = 1
	seen := map[int64][]byte{}
	var anchorSeq int64
	var anchorHash []byte
	anchorMissing := false
	if anchorPath != "" {
		anchorSeq, anchorHash, err = readAnchor(anchorPath)
		if errors.Is(err, os.ErrNotExist) {
			anchorPath, anchorMissing = "", true
		} else if err != nil {
			problem("%v", err)
			anchorPath = ""
		}
	}
	for rows.Next() {
		var e Entry
		var detail string
		var results *int32
		var prevHash, hash []byte
		if err := rows.Scan(&e.Seq, &e.Time, &e.Actor, &e.Role, &e.Action, &e.Reason, &detail, &results, &prevHash, &hash); err != nil {
			return nil, err
		}
		e.Time = e.Time.UTC()
		e.Detail = json.RawMessage(detail)
		if results != nil {
			v := int(*results)
			e.Results = &v
		}
		if e.Seq != expect {
			problem("rows %d to %d are missing (deleted)", expect, e.Seq-1)
		}
		if !bytes.Equal(prevHash, prev) {
			problem("row %d does not link to the row before it", e.Seq)
		}
		if want := chainHash(prevHash, &e); !bytes.Equal(want, hash) {
			problem("row %d was altered: its fields no longer match its hash", e.Seq)
		}
		if e.Seq == anchorSeq {
			seen[e.Seq] = hash
		}
		if e.Action == AnchorAdopted {
			rep.Adopted = append(rep.Adopted, fmt.Sprintf("row %d (%s): %s", e.Seq, e.Time.Format(time.RFC3339), e.Detail))
		}
		for _, c := range cps[e.Seq] {
			if !bytes.Equal(c.Hash, hash) {
				problem("row %d differs from its signed checkpoint of %s", e.Seq, c.At.Format(time.RFC3339))
			}
		}
		delete(cps, e.Seq)
		prev, expect = hash, e.Seq+1
		rep.Rows++
		if progress != nil && rep.Rows%10000 == 0 {
			progress(rep.Rows)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	last := expect - 1
	var headSeq int64
	var headHash []byte
	err = pool.QueryRow(ctx, `SELECT seq, hash FROM audit_head`).Scan(&headSeq, &headHash)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if last > 0 {
			problem("audit_head is missing while the chain has %d rows", last)
		}
	case err != nil:
		return nil, err
	case headSeq != last:
		problem("the chain ends at row %d but audit_head says %d: the newest rows were deleted", last, headSeq)
	case !bytes.Equal(headHash, prev):
		problem("the newest row's hash differs from audit_head's")
	}
	for _, cs := range cps { // checkpoints of rows the walk did not meet
		c := cs[0]
		problem("row %d, signed in a checkpoint on %s, is gone: the chain was cut", c.Seq, c.At.Format(time.RFC3339))
	}
	if anchorMissing && rep.Rows > 0 {
		problem("the anchor file is missing while the chain has %d rows: its tail cannot be checked (deleted with the newest rows?)", rep.Rows)
	}
	if anchorPath != "" {
		switch h, ok := seen[anchorSeq]; {
		case anchorSeq > last:
			problem("the anchor file says row %d exists, the chain ends at %d: the newest rows were deleted", anchorSeq, last)
		case !ok:
			problem("row %d named by the anchor file is missing", anchorSeq)
		case !bytes.Equal(h, anchorHash):
			problem("row %d's hash differs from the anchor file's", anchorSeq)
		}
	}
	if progress != nil {
		progress(rep.Rows)
	}
	return rep, nil
}
