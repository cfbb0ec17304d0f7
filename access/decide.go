package access

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/storage/pgnotify"
)

// Credential kinds a controller may present.
const (
	KindCard = "card"
	KindPIN  = "pin"
	KindQR   = "qr"
)

// Presented is what a door controller read.
type Presented struct {
	Kind  string `json:"kind"`          // card, pin, qr, face
	Value string `json:"value"`         // card number, PIN, QR payload, base64 JPEG
	PIN   string `json:"pin,omitempty"` // a PIN keyed in with a card, for rules that ask for both
}

// Decision is the engine's answer.
type Decision struct {
	Door     string    `json:"door"`
	Grant    bool      `json:"grant"`
	Reason   string    `json:"reason"`
	PersonID string    `json:"person_id,omitempty"`
	PulseMS  int       `json:"pulse_ms,omitempty"`
	Time     time.Time `json:"time"`
	Expires  time.Time `json:"expires"` // a controller acts on it only before this
	Nonce    string    `json:"nonce"`   // echoed from the request
}

// Door is a door unit.
type Door struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Camera       string `json:"camera"`
	Area         string `json:"area"`
	Direction    string `json:"direction"`
	AntiPassback bool   `json:"anti_passback"`
	FailMode     string `json:"fail_mode"`
	PulseMS      int    `json:"pulse_ms"`
	Key          []byte `json:"-"`
	// CameraOpens is what the door's camera opens it for: CameraFaces (default), CameraPlates (a
	// car park's barrier) or CameraBoth.
	CameraOpens string `json:"camera_opens,omitempty"`
	// PlatePolicy is how a gate with a plate camera matches a read plate: PlateExact, or
	// PlateConfusable (one confusable character at high confidence; never the province).
	PlatePolicy string `json:"plate_policy,omitempty"`
	// FacePolicy is what a face may do at the door (PolicyAuto, PolicyFace, PolicyTwoFactor,
	// PolicyVerify).
	FacePolicy string `json:"face_policy"`
}

// Engine decides door requests from an in-memory snapshot of PostgreSQL (reloaded after every
// change; see Watch for changes made by other processes), and writes every decision to the audit
// chain.
type Engine struct {
	pool  *pgxpool.Pool
	trail Auditor
	now   func() time.Time

	reloadMu sync.Mutex
	mu       sync.RWMutex
	snap     *snapshot
	version  int64 // bumped by every reload: a controller's cache is current when it holds this

	pbMu     sync.Mutex
	passback map[[2]string]bool // person, area → inside

	cmds     commands
	peers    peering
	factors  factors
	refused  refusals
	pins     PINGuard
	secrets  *secrets
	hist     cacheHistory
	ctrls    controllersSeen
	sinks    []func(Command, []byte)
	alarms   []func(Alarm)
	onReload []func()
	space    atomic.Pointer[space.Space] // the face space templates are matched in; nil: the default
}

// FaceSpace is the embedding space the engine matches faces in.
func (e *Engine) FaceSpace() space.Space {
	if sp := e.space.Load(); sp != nil {
		return *sp
	}
	return space.DefaultSpace
}

// UseFaceSpace switches the space faces are matched in (a node's configured model) and reloads:
// templates of any other space are left out, never compared.
func (e *Engine) UseFaceSpace(ctx context.Context, sp space.Space) error {
	e.space.Store(&sp)
	return e.Reload(ctx)
}

// Auditor appends to the audit chain (audit.Chain): decisions in groups, admin changes in the
// change's own transaction. A decision that cannot be audited is not given.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (int64, error)
	AppendAll(ctx context.Context, entries []audit.Entry) ([]int64, error)
	Change(ctx context.Context, e audit.Entry, detail func() json.RawMessage, fn func(tx pgx.Tx) error) (int64, error)
}

// NewEngine loads the snapshot.
//
// secret is the server's 32-byte credential key (LoadSecret): card numbers, PINs and QR codes
// are stored keyed with it. Every node of a site uses the same.
func NewEngine(ctx context.Context, pool *pgxpool.Pool, trail Auditor, secret []byte) (*Engine, error) {
	sec, err := newSecrets(secret)
	if err != nil {
		return nil, err
	}
	e := &Engine{pool: pool, trail: trail, now: time.Now, passback: map[[2]string]bool{}, secrets: sec}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT person_id, area, inside FROM passback`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p, a string
		var in bool
		if err := rows.Scan(&p, &a, &in); err != nil {
			return nil, err
		}
		e.passback[[2]string{p, a}] = in
	}
	return e, rows.Err()
}

// Reload reads every table the engine decides from.
func (e *Engine) Reload(ctx context.Context) error {
	// One reload at a time: a reload that read the tables before a change committed must not
	// store its snapshot after the change's own reload stored the newer one.
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	var s *snapshot
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) (err error) {
		s, err = loadSnapshot(ctx, tx, e.secrets.hash, e.FaceSpace())
		return err
	})
	if err != nil {
		return fmt.Errorf("access: loading: %w", err)
	}
	e.mu.Lock()
	e.snap = s
	e.version = time.Now().UnixNano()
	hooks := append([]func(){}, e.onReload...)
	e.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
	return nil
}

// Watch reloads the snapshot whenever any process changes access data (PostgreSQL
// LISTEN/NOTIFY on vigil_access), and every minute in any case, until ctx ends.
func (e *Engine) Watch(ctx context.Context, log *slog.Logger) {
	reload := func() {
		if err := e.Reload(ctx); err != nil {
			log.Warn("access: reload failed", "err", err)
		}
	}
	pgnotify.Listen(ctx, e.pool, "vigil_access", "access: listening for changes", log, pgnotify.Handlers{
		OnNotify: func(string) { reload() }, OnIdle: reload, Idle: time.Minute})
}

// Door returns a door (for its key and settings).
func (e *Engine) Door(id string) (*Door, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	d, ok := e.snap.doors[id]
	return d, ok
}

// Decide answers a credential presented at a door, audits the decision and, on a grant through
// an anti-passback door, records the person inside or out.
func (e *Engine) Decide(ctx context.Context, doorID string, c Presented, nonce string) (Decision, error) {
	s := e.snapshot()
	now := e.now()
	v := s.decideCredential(doorID, c, now, e.inside, e.pins.Locked(doorID, now))
	if s.doors[doorID] != nil {
		v = e.factors.pair(s.faceRisk(doorID), doorID, "credential", v, now)
	}
	if (c.Kind == KindPIN || c.PIN != "") && v.reason != Granted && v.reason != GrantedDuress && v.reason != DenyPINLocked {
		e.pins.Wrong(doorID, now) // every refused PIN (PINGuard)
	}
	extra := map[string]any{"credential": c.Kind}
	if c.PIN != "" {
		extra["second_factor"] = KindPIN
	}
	return e.decide(ctx, doorID, s, v, extra, nonce)
}

func (e *Engine) snapshot() *snapshot {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.snap
}

// inside reads the anti-passback state.
func (e *Engine) inside(person, area string) (bool, bool) {
	e.pbMu.Lock()
	defer e.pbMu.Unlock()
	in, known := e.passback[[2]string{person, area}]
	return in, known
}

// decide turns the rules' verdict into an answer, audits it, and keeps anti-passback state.
// Every credential kind ends here.
func (e *Engine) decide(ctx context.Context, doorID string, s *snapshot, v verdict, extra map[string]any, nonce string) (Decision, error) {
	now := e.now()
	d := Decision{Door: doorID, Time: now.UTC(), Expires: now.Add(10 * time.Second).UTC(), Nonce: nonce, PersonID: v.person, Reason: v.reason}
	d.Grant = d.Reason == Granted || d.Reason == GrantedDuress
	door := s.doors[doorID]
	if d.Grant {
		d.PulseMS = door.PulseMS
	}
	detail := map[string]any{"door": doorID, "person": d.PersonID, "grant": d.Grant, "reason": d.Reason}
	for k, v := range extra {
		detail[k] = v
	}
	if _, err := e.trail.Append(ctx, audit.Entry{Time: now, Actor: "door:" + doorID, Role: "controller", Action: "door.decision", Reason: d.Reason, Detail: detailJSON(detail)}); err != nil {
		// An unaudited grant is not given.
		return Decision{}, err
	}
	if d.Reason == GrantedDuress {
		// A silent alarm: the police post hears of it; the door (and whoever holds the person
		// under threat at it) sees a plain grant.
		e.alarm(Alarm{Type: "duress", Door: doorID, Camera: door.Camera, PersonID: v.person, Time: now})
		d.Reason = Granted
	}
	if !d.Grant {
		// A refusal does not tell the door whose card, PIN or face it was (a guessed PIN would
		// otherwise name its holder); the audit row keeps it.
		d.PersonID = ""
	}
	if d.Grant && v.area != "" {
		in := door.Direction == "in"
		e.pbMu.Lock()
		e.passback[[2]string{v.person, v.area}] = in
		e.pbMu.Unlock()
		e.peers.send("passback", peerMessage{Passback: &passbackMove{Person: v.person, Area: v.area, Inside: in}})
		if _, err := e.pool.Exec(ctx, `INSERT INTO passback (person_id, area, inside, at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (person_id, area) DO UPDATE SET inside = $3, at = $4`, v.person, v.area, in, now); err != nil {
			return d, err
		}
	}
	return d, nil
}

// Alarm is a silent alarm a door raised (a duress code): for the police post, never the door.
type Alarm struct {
	Type     string    `json:"type"` // duress, overstay
	Plate    string    `json:"plate,omitempty"`
	Area     string    `json:"area,omitempty"`
	Door     string    `json:"door"`
	Camera   string    `json:"camera,omitempty"`
	PersonID string    `json:"person_id,omitempty"`
	Time     time.Time `json:"time"`
}

// OnAlarm registers fn to receive every silent alarm (the node puts them on the bus as alarm
// events, which the console and dispatch show). fn must not block.
func (e *Engine) OnAlarm(fn func(Alarm)) {
	e.mu.Lock()
	e.alarms = append(e.alarms, fn)
	e.mu.Unlock()
}

func (e *Engine) alarm(a Alarm) {
	e.mu.RLock()
	fns := e.alarms
	e.mu.RUnlock()
	for _, fn := range fns {
		fn(a)
	}
}

// NewKey makes a controller key (32 random bytes).
func NewKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// ErrExists means an id is taken.
var ErrExists = errors.New("access: already exists")
