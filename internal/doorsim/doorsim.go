// Package doorsim simulates door controllers the way real ones use vigil: signed requests, a
// long-poll channel for unlock commands, a credential cache synchronised from vigil, local
// decisions from that cache while vigil is unreachable (fail-secure unless the door is set
// fail-safe), and the upload of those decisions when vigil is back.
package doorsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/access"
)

// Controller is one door's controller.
type Controller struct {
	Server string // http://host:port
	Door   string
	Key    []byte
	Client *http.Client

	mu      sync.Mutex
	cache   *access.DoorCache
	byHash  map[string][]access.CachedCredential
	offline []access.OfflineDecision
	nonce   atomic.Int64

	Unlocks  atomic.Int64 // unlock commands received on the channel
	OnUnlock func(access.Command)
}

// New returns a controller with a short-timeout client.
func New(server, door string, key []byte) *Controller {
	return &Controller{Server: server, Door: door, Key: key, Client: &http.Client{Timeout: 60 * time.Second}}
}

// ErrBadAnswer means an answer's signature did not verify: it is ignored, as a forged grant must be.
var ErrBadAnswer = errors.New("doorsim: answer signature does not verify")

// call sends a signed request and verifies a signed answer.
func (c *Controller) call(ctx context.Context, method, path, query string, body []byte, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nonce := fmt.Sprintf("%s-%d-%012d", c.Door, time.Now().UnixNano()%1e9, c.nonce.Add(1))
	if len(nonce) > 64 {
		nonce = nonce[len(nonce)-64:]
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path+query, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(access.HeaderTimestamp, ts)
	req.Header.Set(access.HeaderNonce, nonce)
	req.Header.Set(access.HeaderSignature, access.Sign(c.Key, method, path, ts, nonce, body))
	resp, err := c.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode == http.StatusOK && access.SignResponse(c.Key, resp.Header.Get(access.HeaderTimestamp), nonce, out) != resp.Header.Get(access.HeaderSignature) {
		return 0, nil, ErrBadAnswer
	}
	return resp.StatusCode, out, nil
}

// Sync refreshes the credential cache (only when vigil's version moved).
func (c *Controller) Sync(ctx context.Context) error {
	c.mu.Lock()
	since := int64(0)
	if c.cache != nil {
		since = c.cache.Version
	}
	c.mu.Unlock()
	code, out, err := c.call(ctx, "GET", "/v1/doors/"+c.Door+"/credentials", "?since="+strconv.FormatInt(since, 10), nil, 10*time.Second)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("doorsim: sync %s: %d %s", c.Door, code, out)
	}
	var dc access.DoorCache
	if err := json.Unmarshal(out, &dc); err != nil {
		return err
	}
	if dc.Unchanged {
		return nil
	}
	by := map[string][]access.CachedCredential{}
	for _, cc := range dc.Credentials {
		by[cc.Hash] = append(by[cc.Hash], cc)
	}
	c.mu.Lock()
	c.cache, c.byHash = &dc, by
	c.mu.Unlock()
	return nil
}

// Cached is how many credentials the cache holds.
func (c *Controller) Cached() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		return 0
	}
	return len(c.cache.Credentials)
}

// Present decides a credential: online when vigil answers, else from the cache.
func (c *Controller) Present(ctx context.Context, kind, value string) (grant bool, reason string, online bool) {
	body, _ := json.Marshal(map[string]any{"credential": access.Presented{Kind: kind, Value: value}})
	code, out, err := c.call(ctx, "POST", "/v1/doors/"+c.Door+"/decisions", "", body, 2*time.Second)
	if err == nil && code == http.StatusOK {
		var d access.Decision
		if json.Unmarshal(out, &d) == nil {
			return d.Grant, d.Reason, true
		}
	}
	g, r := c.decideOffline(kind, value, time.Now())
	return g, r, false
}

// decideOffline decides from the cache and keeps the decision for upload.
func (c *Controller) decideOffline(kind, value string, now time.Time) (bool, string) {
	key := access.SecretKey(kind, value)
	hash := hex.EncodeToString(key[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	grant, reason, person := false, access.DenyUnknown, ""
	switch {
	case c.cache == nil:
		reason = "offline_no_cache"
	default:
		for _, cc := range c.byHash[hash] {
			person = cc.PersonID
			if cc.From != nil && now.Before(*cc.From) || cc.Until != nil && !now.Before(*cc.Until) {
				reason = access.DenyExpired
				continue
			}
			if cc.Schedule != nil {
				if s, err := access.ParseSchedule(cc.Schedule.Weekly, cc.Schedule.Holidays, cc.Schedule.TZ); err == nil && !s.Open(now) {
					reason = access.DenySchedule
					continue
				}
			}
			grant, reason = true, access.Granted
			if cc.Duress {
				reason = access.GrantedDuress
			}
			break
		}
		if !grant && c.cache.FailMode == "safe" {
			grant, reason = true, "offline_fail_safe"
		}
	}
	c.offline = append(c.offline, access.OfflineDecision{Time: now, Kind: kind, Hash: hash, PersonID: person, Grant: grant, Reason: reason})
	return grant, reason
}

// Pending is how many offline decisions wait for upload.
func (c *Controller) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.offline)
}

// Upload sends the offline decisions; they are dropped only once vigil has recorded them.
func (c *Controller) Upload(ctx context.Context) (int, error) {
	c.mu.Lock()
	batch := append([]access.OfflineDecision(nil), c.offline...)
	c.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	body, _ := json.Marshal(map[string]any{"decisions": batch})
	code, out, err := c.call(ctx, "POST", "/v1/doors/"+c.Door+"/offline-decisions", "", body, 10*time.Second)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("doorsim: upload %s: %d %s", c.Door, code, out)
	}
	c.mu.Lock()
	c.offline = c.offline[len(batch):]
	c.mu.Unlock()
	return len(batch), nil
}

// Run keeps the controller connected until ctx ends: the command channel (long poll), a cache
// sync every syncEvery, and the upload of offline decisions whenever vigil answers.
func (c *Controller) Run(ctx context.Context, syncEvery time.Duration) {
	go func() {
		t := time.NewTicker(syncEvery)
		defer t.Stop()
		for {
			if c.Sync(ctx) == nil {
				_, _ = c.Upload(ctx)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	for ctx.Err() == nil {
		code, out, err := c.call(ctx, "GET", "/v1/doors/"+c.Door+"/commands", "?wait=25", nil, 40*time.Second)
		if err != nil || (code != http.StatusOK && code != http.StatusNoContent) {
			select { // vigil unreachable: retry shortly
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if code == http.StatusOK {
			var res struct{ Commands []access.Command }
			if json.Unmarshal(out, &res) == nil {
				for _, cmd := range res.Commands {
					if cmd.Action == "unlock" && time.Now().Before(cmd.Expires) {
						c.Unlocks.Add(1)
						if c.OnUnlock != nil {
							c.OnUnlock(cmd)
						}
					}
				}
			}
		}
	}
}
