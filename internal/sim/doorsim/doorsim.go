// Package doorsim simulates door controllers the way real ones use vigil: signed requests, a
// long-poll channel for unlock commands, a credential cache synchronised from vigil, local
// decisions from that cache once vigil has been unreachable for a while, and the upload of those
// decisions when vigil is back.
//
// It fails closed under attack: an answer whose signature does not verify is a forgery (or a
// tampered path), so the credential is denied and the forgery counted, never decided from the
// cache; any answer from vigil, even a refusal, means vigil is reachable. Only a vigil that has not
// answered at all for OfflineAfter puts the controller offline. A fail-safe door then stays
// unlocked for egress (Unlocked), but unknown credentials are still refused.
package doorsim

import (
	"bytes"
	"context"
	"crypto/hmac"
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

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-oss/vigil/access"
)

// Controller is one door's controller.
type Controller struct {
	Server string // http://host:port
	Door   string
	Key    []byte
	Client *http.Client

	mu      sync.Mutex
	cache   *access.DoorCache                  // version, fail mode, pulse
	entries map[string]access.CachedCredential // by entry id
	byHash  map[string][]access.CachedCredential
	last    SyncResult
	offline []access.OfflineDecision
	pins    access.PINGuard // offline too, refused PINs lock the keypad
	nonce   atomic.Int64

	seen map[string]time.Time // command ids delivered (a broker may redeliver; a door may use both channels)

	// OfflineAfter is how long vigil must have been unreachable (no answer at all) before the
	// controller decides from its cache. Default 10 s.
	OfflineAfter time.Duration
	unreachable  time.Time // since when no call got an answer; zero while vigil answers

	Unlocks    atomic.Int64 // unlock commands received on the channel
	Rejected   atomic.Int64 // commands refused: bad signature, wrong door, expired
	BadAnswers atomic.Int64 // answers whose signature did not verify: forgeries, reported
	OnUnlock   func(access.Command)
}

// deliver acts on a command once, however many times and ways it arrives.
func (c *Controller) deliver(cmd access.Command) {
	if cmd.Action != "unlock" || !time.Now().Before(cmd.Expires) || cmd.Door != c.Door {
		c.Rejected.Add(1)
		return
	}
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	_, dup := c.seen[cmd.ID]
	if !dup {
		for id, exp := range c.seen {
			if time.Now().After(exp) {
				delete(c.seen, id)
			}
		}
		c.seen[cmd.ID] = cmd.Expires
	}
	c.mu.Unlock()
	if dup {
		return
	}
	c.Unlocks.Add(1)
	if c.OnUnlock != nil {
		c.OnUnlock(cmd)
	}
}

// New returns a controller with a short-timeout client.
func New(server, door string, key []byte) *Controller {
	return &Controller{Server: server, Door: door, Key: key, Client: &http.Client{Timeout: 60 * time.Second}}
}

// ErrBadAnswer means an answer's signature did not verify: it is ignored, as a forged grant must be.
var ErrBadAnswer = errors.New("doorsim: answer signature does not verify")

// call sends a signed request (the query, if any, is in path after "?") and verifies the signed
// answer (every answer to a signed request is: 200 and 204 alike). extra headers are sent as
// they are. Whether vigil answered at all is remembered for offline mode.
func (c *Controller) call(ctx context.Context, method, pathQuery string, body []byte, timeout time.Duration, extra ...string) (int, []byte, error) {
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
	req, err := http.NewRequestWithContext(ctx, method, c.Server+pathQuery, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(access.HeaderTimestamp, ts)
	req.Header.Set(access.HeaderNonce, nonce)
	req.Header.Set(access.HeaderSignature, access.Sign(c.Key, method, req.URL.Path, req.URL.RawQuery, ts, nonce, body))
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		c.heard(false)
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.heard(false)
		return 0, nil, err
	}
	c.heard(true)
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent {
		want := access.SignResponse(c.Key, resp.Header.Get(access.HeaderTimestamp), nonce, out)
		if !hmac.Equal([]byte(want), []byte(resp.Header.Get(access.HeaderSignature))) {
			c.BadAnswers.Add(1)
			return 0, nil, ErrBadAnswer
		}
	}
	return resp.StatusCode, out, nil
}

// heard records whether a call got an answer.
func (c *Controller) heard(answered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case answered:
		c.unreachable = time.Time{}
	case c.unreachable.IsZero():
		c.unreachable = time.Now()
	}
}

// Offline reports whether vigil has been unreachable for OfflineAfter: the controller decides
// from its cache.
func (c *Controller) Offline() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	after := c.OfflineAfter
	if after == 0 {
		after = 10 * time.Second
	}
	return !c.unreachable.IsZero() && time.Since(c.unreachable) >= after
}

// Unlocked reports whether the door stands unlocked: a fail-safe door while offline (for
// egress; it still refuses unknown credentials).
func (c *Controller) Unlocked() bool {
	if !c.Offline() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cache != nil && c.cache.FailMode == "safe"
}

// SyncResult says what the last sync changed.
type SyncResult struct {
	Unchanged, Full bool
	Added, Removed  int
}

// LastSync is what the last successful sync changed.
func (c *Controller) LastSync() SyncResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Sync refreshes the credential cache: nothing when vigil's version has not moved, else the
// changes since the version held (or the whole set when vigil no longer knows that version).
func (c *Controller) Sync(ctx context.Context) error {
	c.mu.Lock()
	since := int64(0)
	if c.cache != nil {
		since = c.cache.Version
	}
	c.mu.Unlock()
	code, out, err := c.call(ctx, "GET", "/v1/doors/"+c.Door+"/credentials?since="+strconv.FormatInt(since, 10), nil, 10*time.Second)
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if dc.Unchanged {
		c.last = SyncResult{Unchanged: true}
		return nil
	}
	if !dc.Full && (c.cache == nil || c.entries == nil || dc.Base != c.cache.Version) {
		c.cache = nil // ask for the whole set next time
		return fmt.Errorf("doorsim: sync %s: changes based on version %d, this controller holds another", c.Door, dc.Base)
	}
	if dc.Full {
		c.entries = map[string]access.CachedCredential{}
	}
	for _, id := range dc.Removed {
		delete(c.entries, id)
	}
	for _, cc := range dc.Credentials {
		c.entries[cc.ID] = cc
	}
	by := map[string][]access.CachedCredential{}
	for _, cc := range c.entries {
		by[cc.Hash] = append(by[cc.Hash], cc)
	}
	c.last = SyncResult{Full: dc.Full, Added: len(dc.Credentials), Removed: len(dc.Removed)}
	dc.Credentials, dc.Removed = nil, nil
	c.cache, c.byHash = &dc, by
	return nil
}

// Cached is how many credentials the cache holds.
func (c *Controller) Cached() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Present decides a credential: vigil decides while it answers; a forged answer or a refusal
// denies; only once vigil has been unreachable for OfflineAfter does the cache decide.
func (c *Controller) Present(ctx context.Context, kind, value string) (grant bool, reason string, online bool) {
	body, _ := json.Marshal(map[string]any{"credential": access.Presented{Kind: kind, Value: value}})
	var extra []string
	if kind == "face" {
		extra = []string{"X-Vigil-Credential-Kind", "face"}
	}
	code, out, err := c.call(ctx, "POST", "/v1/doors/"+c.Door+"/decisions", body, 2*time.Second, extra...)
	var d access.Decision
	switch {
	case errors.Is(err, ErrBadAnswer):
		return false, "answer_forged", true
	case err == nil && code == http.StatusOK:
		if json.Unmarshal(out, &d) != nil {
			return false, "answer_unreadable", true
		}
		return d.Grant, d.Reason, true
	case err == nil: // refused: say why when vigil did
		if json.Unmarshal(out, &d) == nil && d.Reason != "" {
			return false, d.Reason, true
		}
		return false, fmt.Sprintf("refused_%d", code), true
	case !c.Offline():
		return false, "vigil_unreachable", false
	}
	g, r := c.decideOffline(kind, value, time.Now())
	return g, r, false
}

// decideOffline decides from the cache and keeps the decision for upload. It never grants what
// the cache does not hold: a fail-safe door stands unlocked instead (Unlocked).
func (c *Controller) decideOffline(kind, value string, now time.Time) (bool, string) {
	keyed := access.CacheHash(c.Key, kind, value)
	legacy := access.SecretKey(kind, value)
	c.mu.Lock()
	defer c.mu.Unlock()
	grant, reason, person, hash := false, access.DenyUnknown, "", keyed
	if c.cache == nil {
		reason = "offline_no_cache"
	}
	if kind == access.KindPIN && c.pins.Locked(c.Door, now) {
		c.offline = append(c.offline, access.OfflineDecision{Time: now, Kind: kind, Hash: hash, Reason: access.DenyPINLocked})
		return false, access.DenyPINLocked
	}
	defer func() {
		if kind == access.KindPIN && !grant {
			c.pins.Wrong(c.Door, now)
		}
	}()
	for _, h := range []string{keyed, hex.EncodeToString(legacy[:])} {
		for _, cc := range c.byHash[h] {
			person, hash = cc.PersonID, h
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
		if grant {
			break
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
	code, out, err := c.call(ctx, "POST", "/v1/doors/"+c.Door+"/offline-decisions", body, 10*time.Second)
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
	go c.RunSync(ctx, syncEvery)
	c.poll(ctx)
}

// RunMQTT is Run with the command channel on an MQTT broker instead of the long poll: the
// controller subscribes to its door's topic (QoS 1) and acts only on commands signed with its key.
func (c *Controller) RunMQTT(ctx context.Context, syncEvery time.Duration, broker, prefix string) error {
	stop, err := c.ConnectMQTT(broker, prefix)
	if err != nil {
		return err
	}
	defer stop()
	c.RunSync(ctx, syncEvery)
	return nil
}

// ConnectMQTT subscribes the controller to its door's command topic and returns once subscribed.
func (c *Controller) ConnectMQTT(broker, prefix string) (stop func(), err error) {
	sub := make(chan error, 1)
	topic := access.CommandTopic(prefix, c.Door)
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("doorsim-" + c.Door).SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectTimeout(5 * time.Second).SetOrderMatters(false).
		SetOnConnectHandler(func(cl mqtt.Client) { // (re)subscribe on every connection
			t := cl.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
				cmd, err := access.OpenMQTT(c.Key, c.Door, m.Payload(), time.Now())
				if err != nil {
					c.Rejected.Add(1)
					return
				}
				c.deliver(cmd)
			})
			go func() {
				t.Wait()
				select {
				case sub <- t.Error():
				default:
				}
			}()
		})
	cl := mqtt.NewClient(opts)
	cl.Connect()
	select {
	case err := <-sub:
		if err != nil {
			cl.Disconnect(0)
			return nil, fmt.Errorf("doorsim: %s: subscribe %s: %w", c.Door, topic, err)
		}
	case <-time.After(10 * time.Second):
		cl.Disconnect(0)
		return nil, fmt.Errorf("doorsim: %s: MQTT broker %s not reachable", c.Door, broker)
	}
	return func() { cl.Disconnect(250) }, nil
}

// RunSync syncs the credential cache every syncEvery, and uploads the offline decisions whenever
// vigil answers, until ctx ends.
func (c *Controller) RunSync(ctx context.Context, syncEvery time.Duration) {
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
}

func (c *Controller) poll(ctx context.Context) {
	for ctx.Err() == nil {
		code, out, err := c.call(ctx, "GET", "/v1/doors/"+c.Door+"/commands?wait=25", nil, 40*time.Second)
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
					c.deliver(cmd)
				}
			}
		}
	}
}
