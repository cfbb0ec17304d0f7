package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/access/audit"
)

// Door controllers sign each request with their key:
//
//	X-Vigil-Timestamp: Unix seconds
//	X-Vigil-Nonce:     16–64 characters, never reused
//	X-Vigil-Signature: hex HMAC-SHA256(key, METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body)))
//
// and vigil signs its answer the same way over "response", the timestamp, the request's nonce and
// the answer's body, so a controller can tell a real grant from a forged one.
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

// Sign computes a request signature.
func Sign(key []byte, method, path, timestamp, nonce string, body []byte) string {
	return mac(key, method, path, timestamp, nonce, body)
}

// SignResponse computes an answer's signature.
func SignResponse(key []byte, timestamp, nonce string, body []byte) string {
	return mac(key, "response", "", timestamp, nonce, body)
}

func mac(key []byte, a, b, ts, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(a + "\n" + b + "\n" + ts + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(m.Sum(nil))
}

// Nonces remembers the nonces seen in the last SkewWindow, per door.
type Nonces struct {
	mu   sync.Mutex
	seen map[string]time.Time // door + "\x00" + nonce → when it may be forgotten
	last time.Time
}

// NewNonces returns an empty cache.
func NewNonces() *Nonces { return &Nonces{seen: map[string]time.Time{}} }

// Verify checks a signed request from door's controller at now.
func (n *Nonces) Verify(door *Door, method, path, timestamp, nonce, signature string, body []byte, now time.Time) error {
	if len(nonce) < 16 || len(nonce) > 64 || len(signature) != 64 {
		return ErrRequest(DenyBadSignature)
	}
	want := Sign(door.Key, method, path, timestamp, nonce, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrRequest(DenyBadSignature)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrRequest(DenyBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SkewWindow || d < -SkewWindow {
		return ErrRequest(DenyStale)
	}
	k := door.ID + "\x00" + nonce
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.Sub(n.last) > SkewWindow/4 { // forget what can no longer be replayed
		for key, until := range n.seen {
			if now.After(until) {
				delete(n.seen, key)
			}
		}
		n.last = now
	}
	if _, dup := n.seen[k]; dup {
		return ErrRequest(DenyReplay)
	}
	n.seen[k] = now.Add(2 * SkewWindow)
	return nil
}

// Refuse audits a request refused before a decision (bad signature, stale, replay, unknown door).
func (e *Engine) Refuse(ctx context.Context, doorID, reason, remote string) error {
	detail, _ := json.Marshal(map[string]any{"door": doorID, "grant": false, "reason": reason, "remote": remote})
	_, err := e.trail.Append(ctx, audit.Entry{Actor: "door:" + doorID, Role: "controller", Action: "door.decision", Reason: reason, Detail: detail})
	return err
}

// IsRequestError reports whether err is a refused request and its reason.
func IsRequestError(err error) (string, bool) {
	var r ErrRequest
	if errors.As(err, &r) {
		return string(r), true
	}
	return "", false
}
