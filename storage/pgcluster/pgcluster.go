// Package pgcluster runs vigil's own PostgreSQL cluster under the data directory from the
// system's PostgreSQL binaries (initdb, pg_ctl), when no database URL is configured. The server
// listens only on a unix socket inside the data directory. As root, it runs the server as an
// unprivileged user (postgres, or VIGIL_PG_USER), since PostgreSQL refuses to run as root.
//
// Several vigil processes may share one cluster (serve, and tools such as vigil doors add run
// beside it). Each holds a shared lock on DIR/users.lock for as long as it uses the cluster;
// starting is serialised by DIR/start.lock; and the last user to leave stops the server. So a
// tool never stops a cluster that a serve still uses, and never starts a second one.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private PostgreSQL cluster.
type Cluster struct {
	Dir    string // the cluster's folder: data/, socket/, log
	bin    string
	cred   *syscall.Credential
	owner  *user.User
	log    *slog.Logger
	closed bool
	users  *os.File // holds a shared flock while this process uses the cluster
	// Running is true when the cluster was already running at Start (another vigil process, or
	// one that crashed and left it).
	Running bool
}

// Database is the database vigil uses inside its cluster.
const Database = "vigil"

// ErrNoBinaries means PostgreSQL's server binaries are not installed.
var ErrNoBinaries = errors.New("pgcluster: PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql package or set database.url")

// FindBin returns the newest /usr/lib/postgresql/N/bin, or the folder of initdb on PATH.
func FindBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

// Start initialises the cluster on first use, then starts it and waits until it accepts
// connections. It is reused across restarts; a server left running by a crashed vigil is taken
// over.
func Start(ctx context.Context, dir string, log *slog.Logger) (*Cluster, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: abs, bin: bin, log: log.With("component", "pgcluster")}
	if os.Geteuid() == 0 {
		name := os.Getenv("VIGIL_PG_USER")
		if name == "" {
			name = "postgres"
		}
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("pgcluster: running as root, PostgreSQL needs an unprivileged user and %q does not exist (create it or set VIGIL_PG_USER, or set database.url)", name)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred, c.owner = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, u
	}
	if err := c.makeDirs(abs); err != nil {
		return nil, err
	}
	// Use first, then start: a process that is stopping the server (it holds users.lock
	// exclusively) finishes before this one looks at it.
	users, err := lockFile(ctx, filepath.Join(abs, "users.lock"), syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	c.users = users
	start, err := lockFile(ctx, filepath.Join(abs, "start.lock"), syscall.LOCK_EX)
	if err != nil {
		c.release()
		return nil, err
	}
	defer start.Close()
	if err := c.chown(abs); err != nil {
		c.release()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "data", "PG_VERSION")); err != nil {
		c.log.Info("initialising PostgreSQL cluster", "dir", abs)
		if out, err := c.run(ctx, "initdb", "-D", filepath.Join(abs, "data"), "-U", "vigil", "--auth=trust",
			"--encoding=UTF8", "--locale=C.UTF-8"); err != nil {
			c.release()
			return nil, fmt.Errorf("pgcluster: initdb: %w: %s", err, out)
		}
	}
	if !c.running(ctx) {
		opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=on -c max_connections=100", filepath.Join(abs, "socket"))
		if out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(abs, "data"), "-l", filepath.Join(abs, "log"),
			"-o", opts, "-w", "-t", "60", "start"); err != nil {
			c.release()
			return nil, fmt.Errorf("pgcluster: pg_ctl start: %w: %s (see %s)", err, out, filepath.Join(abs, "log"))
		}
	} else {
		c.Running = true
		c.log.Debug("PostgreSQL cluster already running", "dir", abs)
	}
	if err := c.ensureDatabase(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// URL is the connection string of vigil's database in the cluster.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://vigil@/%s?host=%s&sslmode=disable", Database, filepath.Join(c.Dir, "socket"))
}

func (c *Cluster) running(ctx context.Context) bool {
	_, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.Dir, "data"), "status")
	return err == nil
}

func (c *Cluster) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://vigil@/postgres?host=%s&sslmode=disable", filepath.Join(c.Dir, "socket")))
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, Database).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database); err != nil {
			return err
		}
	}
	return nil
}

// Stop ends this process's use of the cluster. When no other process uses it, it shuts the
// server down (fast mode: in-flight transactions roll back, committed data is safe) and waits
// for it; otherwise the server stays up for them.
func (c *Cluster) Stop() {
	if c.closed {
		return
	}
	c.closed = true
	defer c.release()
	// The last user out stops the server: an exclusive lock is granted only when no other
	// process holds its shared one. (A failed upgrade drops ours, which Stop is giving up anyway.)
	if err := syscall.Flock(int(c.users.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		c.log.Info("PostgreSQL cluster left running: another vigil process uses it", "dir", c.Dir)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "fast", "-w", "stop"); err != nil {
		c.log.Warn("stopping PostgreSQL", "err", err, "output", string(out))
	}
}

// release gives up this process's lock on the cluster.
func (c *Cluster) release() {
	if c.users != nil {
		c.users.Close()
		c.users = nil
	}
}

// lockFile opens path and takes a flock of the given kind, waiting for it until ctx ends.
func lockFile(ctx context.Context, path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("pgcluster: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("pgcluster: waiting for %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// makeDirs creates the cluster's folders. As root, the folders it creates on the way (the data
// directory itself, on a first run) are made searchable by everyone (0711): the server runs as
// another user and must reach its own folder through them. Folders that existed are left as
// they are; chown reports one the server cannot get through.
func (c *Cluster) makeDirs(abs string) error {
	var created []string
	for p := abs; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		created = append(created, p)
	}
	if err := os.MkdirAll(filepath.Join(abs, "socket"), 0o700); err != nil {
		return err
	}
	if c.cred == nil {
		return nil
	}
	for _, p := range created {
		if p == abs {
			continue // the cluster's own folder goes to the server's user (chown)
		}
		if err := os.Chmod(p, 0o711); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Env = append(os.Environ(), "HOME="+c.owner.HomeDir, "USER="+c.owner.Username)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// chown gives the cluster folder to the server's user when running as root, and makes sure that
// user can reach it.
func (c *Cluster) chown(dir string) error {
	if c.cred == nil {
		return nil
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(c.cred.Uid), int(c.cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("pgcluster: chown %s: %w", dir, err)
	}
	// Every parent must be searchable by the server's user.
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgcluster: %s is not searchable by user %s; PostgreSQL cannot reach %s (chmod o+x it or set database.url)", p, c.owner.Username, dir)
		}
	}
	return nil
}
