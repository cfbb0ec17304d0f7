// Package auth owns who may call vigil's API: principals (people and machines), their roles and
// their bearer tokens, stored only as SHA-256.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/storage/pgnotify"
)

// Roles.
const (
	RoleAdmin        = "admin"
	RoleInvestigator = "investigator"
	RoleOperator     = "operator"
	RolePatrol       = "patrol"
	RoleResident     = "resident"
	RoleProperty     = "property" // the estate's staff: people, units, leases, credentials
	RoleAuditor      = "auditor"  // the privacy officer: reviews the audit chain, nothing else
)

// Roles lists every role.
var Roles = []string{RoleAdmin, RoleInvestigator, RoleOperator, RolePatrol, RoleResident, RoleProperty, RoleAuditor}

// Actor is who makes a change or a request, as the audit chain records it: a principal's name and
// role, or a tool's ("vigil-cli").
type Actor struct{ Name, Role string }

// Principal is an authenticated API user or machine.
type Principal struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Person    string     `json:"person,omitempty"` // the person a resident's token acts for
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Errors.
var (
	ErrBadRole      = fmt.Errorf("auth: role must be one of %s", strings.Join(Roles, ", "))
	ErrUnauthorized = errors.New("auth: missing, unknown or revoked token")
)

// tokenPrefix marks vigil tokens (so a leaked one is easy to recognise and scan for).
const tokenPrefix = "vgl_"

// Principals keeps API principals in PostgreSQL; bearer tokens are stored only as SHA-256.
// Lookups are cached for a short while so each request does not cost a query.
type Principals struct {
	pool *pgxpool.Pool
	ttl  time.Duration

	mu         sync.Mutex
	cache      map[[32]byte]cached
	hooks      []func(id int64)
	gen        uint64         // revocations heard: a lookup that saw it move is not cached
	revokedIDs map[int64]bool // principals heard revoked (revocation is for good)

	afterLookup func() // tests: runs between the query and the cache write
}

type cached struct {
	p   *Principal
	exp time.Time
}

// NewPrincipals returns the store. A revocation takes effect within ttl (default 10 s).
func NewPrincipals(pool *pgxpool.Pool, ttl time.Duration) *Principals {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	return &Principals{pool: pool, ttl: ttl, cache: map[[32]byte]cached{}}
}

// Create adds a principal and returns its token, shown this once.
func (s *Principals) Create(ctx context.Context, name, role string) (*Principal, string, error) {
	return s.CreateFor(ctx, name, role, "")
}

// CreateFor adds a principal acting for a person (a resident's token; person "" for none) and
// returns its token, shown this once. A resident's token must name its person.
func (s *Principals) CreateFor(ctx context.Context, name, role, person string) (*Principal, string, error) {
	return s.create(ctx, s.pool, name, role, person)
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Principals) create(ctx context.Context, q querier, name, role, person string) (*Principal, string, error) {
	if !slices.Contains(Roles, role) {
		return nil, "", ErrBadRole
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, "", errors.New("auth: a principal needs a name (at most 200 characters)")
	}
	switch {
	case role == RoleResident && person == "":
		return nil, "", errors.New("auth: a resident's token acts for a person: give the person's id (--person)")
	case role != RoleResident && person != "":
		return nil, "", errors.New("auth: only a resident's token acts for a person")
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := sha256.Sum256([]byte(token))
	p := &Principal{Name: name, Role: role, Person: person}
	err := q.QueryRow(ctx, `INSERT INTO principals (name, role, token_hash, person_id) VALUES ($1, $2, $3, nullif($4, '')) RETURNING id, created_at`,
		name, role, h[:], person).Scan(&p.ID, &p.CreatedAt)
	if err != nil {
		return nil, "", err
	}
	return p, token, nil
}

// InviteTTL is how long a resident's invitation link may be opened.
const InviteTTL = 7 * 24 * time.Hour

// Invite makes a one-time invitation code for a resident's app: whoever opens the link first,
// before it expires, gets a resident token acting for person (Join). Only its hash is kept.
func (s *Principals) Invite(ctx context.Context, person, by string) (code string, expires time.Time, err error) {
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	code = "vgi_" + base64.RawURLEncoding.EncodeToString(raw[:])
	h := sha256.Sum256([]byte(code))
	err = s.pool.QueryRow(ctx, `INSERT INTO resident_invitations (code_hash, person_id, expires, created_by) VALUES ($1, $2, now() + $3::interval, $4) RETURNING expires`,
		h[:], person, fmt.Sprintf("%d seconds", int(InviteTTL.Seconds())), by).Scan(&expires)
	return code, expires, err
}

// ErrInvitation means an invitation code is unknown, used or expired.
var ErrInvitation = errors.New("auth: this invitation link is unknown, already used or expired: ask the property office for a new one")

// Join spends an invitation code: it returns a new resident token acting for the invited person.
func (s *Principals) Join(ctx context.Context, code string) (*Principal, string, error) {
	if !strings.HasPrefix(code, "vgi_") || len(code) > 100 {
		return nil, "", ErrInvitation
	}
	h := sha256.Sum256([]byte(code))
	var p *Principal
	var token string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var person, name string
		err := tx.QueryRow(ctx, `UPDATE resident_invitations i SET used_at = now() FROM people p
			WHERE i.code_hash = $1 AND i.used_at IS NULL AND i.expires > now() AND p.id = i.person_id
			RETURNING i.person_id, p.name`, h[:]).Scan(&person, &name)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrInvitation
		}
		if err != nil {
			return err
		}
		p, token, err = s.create(ctx, tx, name+" (app)", RoleResident, person)
		return err
	})
	return p, token, err
}

// Authenticate returns the principal a bearer token belongs to.
func (s *Principals) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 100 {
		return nil, ErrUnauthorized
	}
	h := sha256.Sum256([]byte(token))
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[h]
	gen := s.gen
	s.mu.Unlock()
	if ok && now.Before(c.exp) {
		if c.p == nil {
			return nil, ErrUnauthorized
		}
		return c.p, nil
	}
	p := &Principal{}
	err := s.pool.QueryRow(ctx, `SELECT id, name, role, coalesce(person_id, ''), created_at, revoked_at FROM principals WHERE token_hash = $1`, h[:]).
		Scan(&p.ID, &p.Name, &p.Role, &p.Person, &p.CreatedAt, &p.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && p.RevokedAt != nil {
		p = nil
	} else if err != nil {
		return nil, err
	}
	if s.afterLookup != nil {
		s.afterLookup()
	}
	s.mu.Lock()
	if p != nil && s.revokedIDs[p.ID] {
		p = nil // revoked after the query read it
	}
	// Cached only when no revocation came while the query ran: its answer may predate it.
	if s.gen == gen {
		if len(s.cache) > 10000 {
			clear(s.cache)
		}
		s.cache[h] = cached{p: p, exp: now.Add(s.ttl)}
	}
	s.mu.Unlock()
	if p == nil {
		return nil, ErrUnauthorized
	}
	return p, nil
}

// List returns every principal, newest first.
func (s *Principals) List(ctx context.Context) ([]Principal, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, role, coalesce(person_id, ''), created_at, revoked_at FROM principals ORDER BY id DESC`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Principal, error) {
		var p Principal
		err := r.Scan(&p.ID, &p.Name, &p.Role, &p.Person, &p.CreatedAt, &p.RevokedAt)
		return p, err
	})
}

// Revoke revokes every token of the named principal; it returns how many.
//
// Every process that authenticates (every node, and this one) hears of it at once through
// PostgreSQL's NOTIFY on vigil_principals (Watch), drops its cache and ends the revoked
// principals' live sessions.
func (s *Principals) Revoke(ctx context.Context, name string) (int64, error) {
	var ids []int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `UPDATE principals SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id`, name)
		var err error
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `SELECT pg_notify('vigil_principals', $1)`, strconv.FormatInt(id, 10)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.revoked(ids)
	return int64(len(ids)), nil
}

// OnRevoke registers fn to hear of every revoked principal's id (the API ends their event
// streams and live views). fn must not block.
func (s *Principals) OnRevoke(fn func(id int64)) {
	s.mu.Lock()
	s.hooks = append(s.hooks, fn)
	s.mu.Unlock()
}

// IsRevoked reports whether this process has heard that the principal was revoked. A stream or a
// live view that was authenticated just before its revocation and registered just after checks
// it, so none outlives a revocation unseen.
func (s *Principals) IsRevoked(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokedIDs[id]
}

// revoked drops the cache, remembers the ids and tells the hooks.
func (s *Principals) revoked(ids []int64) {
	s.mu.Lock()
	s.gen++
	clear(s.cache)
	if s.revokedIDs == nil {
		s.revokedIDs = map[int64]bool{}
	}
	for _, id := range ids {
		s.revokedIDs[id] = true
	}
	hooks := s.hooks
	s.mu.Unlock()
	for _, id := range ids {
		for _, fn := range hooks {
			fn(id)
		}
	}
}

// unheard is the ids this process has not heard were revoked.
func (s *Principals) unheard(ids []int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ids[:0]
	for _, id := range ids {
		if !s.revokedIDs[id] {
			out = append(out, id)
		}
	}
	return out
}

// Watch hears of revocations made by any process (PostgreSQL LISTEN/NOTIFY) until ctx ends. While
// it is not listening (the database away), the cache's TTL bounds how long a revoked token lives.
func (s *Principals) Watch(ctx context.Context, log *slog.Logger) {
	pgnotify.Listen(ctx, s.pool, "vigil_principals", "auth: listening for revocations", log, pgnotify.Handlers{
		OnListen: func(ctx context.Context, conn *pgxpool.Conn) error {
			// Anything revoked while not listening: its sessions end now too.
			rows, _ := conn.Query(ctx, `SELECT id FROM principals WHERE revoked_at IS NOT NULL`)
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			s.revoked(s.unheard(ids))
			return nil
		},
		OnNotify: func(payload string) {
			id, _ := strconv.ParseInt(payload, 10, 64)
			s.revoked([]int64{id})
		},
	})
}
