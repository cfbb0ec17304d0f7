package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/access/audit"
)

// Door controllers sign each request with their key:
//
//	X-Vigil-Timestamp: Unix seconds
//	X-Vigil-Nonce:     16–64 characters, never reused
//	X-Vigil-Signature: hex HMAC-SHA256(key, "request" "\n" METHOD "\n" PATH "\n" QUERY "\n"
//	                   TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body)))
//
// where QUERY is the canonical query: the parameters sorted by name (a name's values in the order
// they came), each name and value URL-encoded, joined with & (Go's url.Values.Encode; empty
// without a query). The whole
// request is covered, so a `since` or `wait` cannot be rewritten in transit. vigil signs its
// answers the same way with the label "response" (empty method, path and query) over the
// timestamp, the request's nonce and the answer's body, and MQTT commands with the label
// "command" over the command's id, so that no signature of one kind passes for another.
const (
	HeaderTimestamp = "X-Vigil-Timestamp"
	HeaderNonce     = "X-Vigil-Nonce"
	HeaderSignature = "X-Vigil-Signature"
)

// SkewWindow is how far a request's timestamp may be from vigil's clock; nonces are remembered
// this long, so a replay inside it is refused and one after it is stale.
const SkewWindow = 30 * time.Second

// ErrRequest is a refused request; its text is the reason code.
type ErrRequest string

func (e ErrRequest) Error() string { return string(e) }

// Signing labels: a signature of one kind never verifies as another.
const (
	labelRequest  = "request"
	labelResponse = "response"
	labelCommand  = "command"
)

// CanonicalQuery is the signed form of a query string (url.Values.Encode: sorted, encoded).
func CanonicalQuery(rawQuery string) string {
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "\x00invalid" // a query that does not parse cannot be signed
	}
	return v.Encode()
}

// Sign computes a request signature; rawQuery is the request's query string (without "?").
func Sign(key []byte, method, path, rawQuery, timestamp, nonce string, body []byte) string {
	return signRequest(key, method, path, CanonicalQuery(rawQuery), timestamp, nonce, body)
}

func signRequest(key []byte, method, path, canonicalQuery, timestamp, nonce string, body []byte) string {
	return mac(key, labelRequest, method+"\n"+path+"\n"+canonicalQuery, timestamp, nonce, body)
}

// SignResponse computes an answer's signature.
func SignResponse(key []byte, timestamp, nonce string, body []byte) string {
	return mac(key, labelResponse, "\n\n", timestamp, nonce, body)
}

// SignCommand computes an MQTT command's signature (its id is the nonce).
func SignCommand(key []byte, timestamp, id string, body []byte) string {
	return mac(key, labelCommand, "\n\n", timestamp, id, body)
}

func mac(key []byte, label, what, ts, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label + "\n" + what + "\n" + ts + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckHeaders checks a signed request's headers before anything else of it is read: a nonce of
// 16–64 characters, a 64-digit hex signature, a timestamp within SkewWindow of now.
func CheckHeaders(timestamp, nonce, signature string, now time.Time) error {
	if len(nonce) < 16 || len(nonce) > 64 || len(signature) != 64 {
		return ErrRequest(DenyBadSignature)
	}
	if _, err := hex.DecodeString(signature); err != nil {
		return ErrRequest(DenyBadSignature)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || len(timestamp) > 20 {
		return ErrRequest(DenyBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SkewWindow || d < -SkewWindow {
		return ErrRequest(DenyStale)
	}
	return nil
}

// Nonces remembers the nonces seen in the last SkewWindow, per door.
type Nonces struct {
	mu   sync.Mutex
	seen map[string]time.Time // door + "\x00" + nonce → when it may be forgotten
	last time.Time
	// shared, when set, is the site's nonce store (cluster.Nonces.Claim): a nonce one node saw
	// is refused on every other. When it cannot be reached the node's own cache still refuses
	// replays to this node, and the outage is reported through onSharedError.
	shared        func(key string) (fresh bool, err error)
	onSharedError func(error)
}

// Share makes the cache consult the site's nonce store too (several nodes).
func (n *Nonces) Share(claim func(key string) (bool, error), onError func(error)) {
	n.mu.Lock()
	n.shared, n.onSharedError = claim, onError
	n.mu.Unlock()
}

// NewNonces returns an empty cache.
func NewNonces() *Nonces { return &Nonces{seen: map[string]time.Time{}} }

// Verify checks a signed request from door's controller at now (its headers first: CheckHeaders).
func (n *Nonces) Verify(door *Door, method, path, rawQuery, timestamp, nonce, signature string, body []byte, now time.Time) error {
	if err := CheckHeaders(timestamp, nonce, signature, now); err != nil {
		return err
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return ErrRequest(DenyBadSignature) // no signature covers a query that does not parse
	}
	want := signRequest(door.Key, method, path, q.Encode(), timestamp, nonce, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrRequest(DenyBadSignature)
	}
	k := door.ID + "\x00" + nonce
	n.mu.Lock()
	if now.Sub(n.last) > SkewWindow/4 { // forget what can no longer be replayed
		for key, until := range n.seen {
			if now.After(until) {
				delete(n.seen, key)
			}
		}
		n.last = now
	}
	if _, dup := n.seen[k]; dup {
		n.mu.Unlock()
		return ErrRequest(DenyReplay)
	}
	n.seen[k] = now.Add(2 * SkewWindow)
	shared, onErr := n.shared, n.onSharedError
	n.mu.Unlock()
	if shared != nil {
		fresh, err := shared(k)
		switch {
		case err != nil && onErr != nil:
			onErr(err)
		case err == nil && !fresh:
			return ErrRequest(DenyReplay) // another node saw it
		}
	}
	return nil
}

// refusals counts requests refused before a decision (bad signature, stale, replay, unknown
// door) by door, remote address and reason, for the audit chain: one row per key per minute
// (FlushRefusals), however many an attacker sends. Bounded: past maxRefusalKeys distinct keys the
// rest are counted together.
type refusals struct {
	mu     sync.Mutex
	counts map[refusalKey]int
	since  time.Time
}

type refusalKey struct{ door, remote, reason string }

const maxRefusalKeys = 1000

// Refuse counts a request refused before a decision. door is what the request named: an unknown
// door's id is never stored as given (an attacker chooses it), only marked unknown.
func (e *Engine) Refuse(door, reason, remote string) {
	if _, ok := e.Door(door); !ok {
		door = "(unknown)"
	}
	r := &e.refused
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add(refusalKey{door, remote, reason}, 1, e.now())
}

// add counts n refusals under k (past maxRefusalKeys keys, under the reason alone); since starts
// the period when none is open. Held under r.mu.
func (r *refusals) add(k refusalKey, n int, since time.Time) {
	if r.counts == nil {
		r.counts, r.since = map[refusalKey]int{}, since
	}
	if _, ok := r.counts[k]; !ok && len(r.counts) >= maxRefusalKeys {
		k = refusalKey{"*", "*", k.reason}
	}
	r.counts[k] += n
}

// FlushRefusals writes what was refused since the last flush: one audit row per door, remote
// address and reason, with the count and the period.
func (e *Engine) FlushRefusals(ctx context.Context) error {
	r := &e.refused
	r.mu.Lock()
	counts, since := r.counts, r.since
	r.counts = nil
	r.mu.Unlock()
	now := e.now()
	entries := make([]audit.Entry, 0, len(counts))
	for k, n := range counts {
		detail, _ := json.Marshal(map[string]any{"door": k.door, "remote": k.remote, "reason": k.reason, "count": n,
			"from": since.UTC(), "to": now.UTC()})
		entries = append(entries, audit.Entry{Actor: "door:" + k.door, Role: "controller", Action: "door.refused", Reason: k.reason, Detail: detail, Results: &n})
	}
	if _, err := e.trail.AppendAll(ctx, entries); err != nil {
		// Kept for the next flush: a database outage loses no count.
		r.mu.Lock()
		for k, n := range counts {
			r.add(k, n, since)
		}
		r.since = since
		r.mu.Unlock()
		return err
	}
	return nil
}

// RunRefusals flushes the refusals every minute, and once more when ctx ends.
func (e *Engine) RunRefusals(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.FlushRefusals(fctx); err != nil {
				log.Warn("access: writing refused requests to the audit chain", "err", err)
			}
			return
		case <-t.C:
			if err := e.FlushRefusals(ctx); err != nil {
				log.Warn("access: writing refused requests to the audit chain", "err", err)
			}
		}
	}
}

// IsRequestError reports whether err is a refused request and its reason.
func IsRequestError(err error) (string, bool) {
	var r ErrRequest
	if errors.As(err, &r) {
		return string(r), true
	}
	return "", false
}
