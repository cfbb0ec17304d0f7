// Package testenv gives tests real services: a fresh PostgreSQL database per test on the
// machine's server (VIGIL_TEST_PG, default postgres://postgres@127.0.0.1:5432/postgres), and a
// TCP proxy that can cut a connection path to simulate an outage.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/storage/schema"
)

// AdminURL is the PostgreSQL server tests create their databases on.
func AdminURL() string {
	if u := os.Getenv("VIGIL_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// PostgresDB creates an empty database for the test and drops it afterwards; it returns its URL.
// Without a server it is Missing.
func PostgresDB(t testing.TB) string {
	t.Helper()
	u, drop, err := CreateDB(context.Background())
	if err != nil {
		Missing(t, "PostgreSQL at %s: %v", AdminURL(), err)
	}
	t.Cleanup(drop)
	return u
}

// CreateDB creates an empty database on AdminURL's server; drop removes it.
func CreateDB(ctx context.Context) (dbURL string, drop func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return "", nil, err
	}
	defer admin.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "vigil_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	u, _ := url.Parse(AdminURL())
	u.Path = "/" + name
	return u.String(), drop, nil
}

// Proxy forwards TCP connections to a target until Cut, which drops every connection and
// refuses new ones until Restore.
type Proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
	sent     int64 // bytes forwarded to the target
	cutAfter int64 // when > 0: Cut once sent passes it
}

// NewProxy listens on a free loopback port.
func NewProxy(t testing.TB, target string) *Proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *Proxy) pipe(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, &counter{r: c, p: p}); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// counter counts what a connection sends to the target, for CutAfter.
type counter struct {
	r io.Reader
	p *Proxy
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.mu.Lock()
	c.p.sent += int64(n)
	over := c.p.cutAfter > 0 && c.p.sent > c.p.cutAfter
	c.p.mu.Unlock()
	if over {
		c.p.Cut()
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

// CutAfter cuts the path (as Cut) once n more bytes have been sent to the target: an outage in
// the middle of an upload, whatever the machine's speed.
func (p *Proxy) CutAfter(n int64) {
	p.mu.Lock()
	p.cutAfter = p.sent + n
	p.mu.Unlock()
}

// Cut drops every open connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut, p.cutAfter = false, 0
	p.mu.Unlock()
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

// Pool is a connection pool to a fresh database for the test with every migration applied
// (storage/schema); it closes, and the database is dropped, when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := schema.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// Secret is a credential secret for a test's access engine (32 random bytes).
func Secret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}
