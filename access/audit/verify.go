package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Report is what Verify found.
type Report struct {
	Rows     int64
	Problems []string // empty: the chain is intact
}

// OK reports whether the chain verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Verify walks the whole chain: every row's hash recomputed, every link to the previous row,
// sequence numbers without gaps, the newest row against audit_head and, when anchorPath names a
// file, against the anchor outside the database. progress, when set, gets the rows checked so far.
func Verify(ctx context.Context, pool *pgxpool.Pool, anchorPath string, progress func(rows int64)) (*Report, error) {
	rep := &Report{}
	problem := func(format string, args ...any) {
		if len(rep.Problems) < 100 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
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
	if anchorPath != "" {
		anchorSeq, anchorHash, err = readAnchor(anchorPath)
		if errors.Is(err, os.ErrNotExist) {
			anchorPath = ""
		} else if err != nil {
			return nil, err
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
