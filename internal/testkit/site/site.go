// Package site runs a many-node vigil site as real processes on 127.0.0.1, for the cluster tests
// and bench: a NATS cluster of nats-server processes with JetStream, vigil nodes (`vigil serve`,
// each its own process, killed with SIGKILL or stopped with SIGTERM), one PostgreSQL database and
// an optional S3 server. It is pure Go and needs the nats-server binary on the PATH.
package site

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config describes the site.
type Config struct {
	// Vigil is the command that runs vigil (the binary, or a test binary that acts as it) and
	// Env what it needs in its environment besides the site's.
	Vigil []string
	Env   []string
	// Dir holds the processes' folders, configuration files and logs.
	Dir string
	// DatabaseURL is the site's PostgreSQL database (empty).
	DatabaseURL string
	// NATS is how many nats-server processes form the bus (default 3; replicas follow); -1
	// runs no bus servers: each node embeds its own (a single node, the reference the cluster
	// is measured against).
	NATS int
	// S3, when set, stores footage (Endpoint host:port, AccessKey, SecretKey).
	S3 *S3
	// Extra is YAML appended to every node's configuration (pipeline, footage settings).
	Extra string
}

// S3 is an S3 server's address and keys.
type S3 struct{ Endpoint, AccessKey, SecretKey string }

// Site is a running site.
type Site struct {
	cfg    Config
	BusURL string
	Token  string // an admin's bearer token

	mu      sync.Mutex
	nats    []*exec.Cmd
	monitor []string // the NATS servers' monitoring addresses
	nodes   map[string]*Node
	http    *http.Client
}

// PID is the node's process id (0 when it is not running).
func (n *Node) PID() int {
	if n.cmd == nil || n.cmd.Process == nil || !n.Alive() {
		return 0
	}
	return n.cmd.Process.Pid
}

// NATSPIDs are the bus servers' process ids.
func (s *Site) NATSPIDs() []int {
	var out []int
	for _, c := range s.nats {
		out = append(out, c.Process.Pid)
	}
	return out
}

// NATSMessages is how many messages the bus servers have received in all (their /varz in_msgs):
// client publishes, and the servers' own replication and route traffic.
func (s *Site) NATSMessages() (clients, total int64) {
	for _, m := range s.monitor {
		r, err := s.http.Get("http://" + m + "/varz")
		if err != nil {
			continue
		}
		var v struct {
			InMsgs int64 `json:"in_msgs"`
		}
		_ = json.NewDecoder(r.Body).Decode(&v)
		r.Body.Close()
		total += v.InMsgs
		r, err = s.http.Get("http://" + m + "/connz?limit=1024")
		if err != nil {
			continue
		}
		var c struct {
			Conns []struct {
				InMsgs int64 `json:"in_msgs"`
			} `json:"connections"`
		}
		_ = json.NewDecoder(r.Body).Decode(&c)
		r.Body.Close()
		for _, cn := range c.Conns {
			clients += cn.InMsgs
		}
	}
	return clients, total
}

// Node is one vigil process.
type Node struct {
	ID, URL string
	cmd     *exec.Cmd
	done    chan struct{}
	udp     string
	addr    string
	// stopping is set once the node was signalled: it no longer counts as running cameras.
	stopping atomic.Bool
}

// Alive reports whether the node's process is running.
func (n *Node) Alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Start starts the NATS cluster and makes an admin token; nodes start with StartNode.
func Start(ctx context.Context, cfg Config) (*Site, error) {
	if cfg.NATS == 0 {
		cfg.NATS = 3
	}
	s := &Site{cfg: cfg, nodes: map[string]*Node{}, http: &http.Client{Timeout: 10 * time.Second}}
	if cfg.NATS < 0 {
		// no bus servers
	} else if err := s.startNATS(ctx); err != nil {
		s.Close()
		return nil, err
	}
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i*7 + 1)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "secret"), []byte(fmt.Sprintf("%x\n", secret)), 0o600); err != nil {
		s.Close()
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "admin"), 0o700); err != nil {
		s.Close()
		return nil, err
	}
	out, err := s.vigil(ctx, "token", "create", "--role", "admin", "--name", "site harness", "--data", filepath.Join(cfg.Dir, "admin"))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("site: admin token: %v: %s", err, out)
	}
	s.Token = strings.TrimSpace(string(out))
	return s, nil
}

// vigil runs a vigil command to its end against the site's database.
func (s *Site) vigil(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.cfg.Vigil[0], append(append([]string{}, s.cfg.Vigil[1:]...), args...)...)
	cmd.Env = append(append(os.Environ(), s.cfg.Env...), "VIGIL_DATABASE_URL="+s.cfg.DatabaseURL)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return errb.Bytes(), err
	}
	return out, nil
}

// startNATS starts the bus servers and waits until they form a cluster. A server that exits
// (its port, picked free a moment before, taken meanwhile by another test's process) or a
// cluster not ready in 30 s is started again on fresh ports, three times at most; the error
// names the servers' last log lines.
func (s *Site) startNATS(ctx context.Context) error {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		return errors.New("site: nats-server is not on the PATH")
	}
	for try := 1; ; try++ {
		err := s.tryNATS(ctx, bin, try)
		if err == nil || try == 3 || ctx.Err() != nil {
			return err
		}
		for _, c := range s.nats {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		s.nats, s.monitor = nil, nil
	}
}

func (s *Site) tryNATS(ctx context.Context, bin string, try int) error {
	clients, routes := make([]string, s.cfg.NATS), make([]string, s.cfg.NATS)
	for i := range clients {
		clients[i], routes[i] = "nats://"+FreeAddr(), "nats://"+FreeAddr()
	}
	var logs []string
	for i := range clients {
		name := fmt.Sprintf("nats-%d", i+1)
		host, port, _ := net.SplitHostPort(strings.TrimPrefix(clients[i], "nats://"))
		mon := FreeAddr()
		s.monitor = append(s.monitor, mon)
		_, mport, _ := net.SplitHostPort(mon)
		log := filepath.Join(s.cfg.Dir, fmt.Sprintf("%s.%d.log", name, try))
		logs = append(logs, log)
		args := []string{"-a", host, "-p", port, "-m", mport, "-js", "-sd", filepath.Join(s.cfg.Dir, fmt.Sprintf("%s.%d", name, try)), "-n", name,
			"--cluster_name", "vigil", "-cluster", routes[i], "-routes", strings.Join(routes, ","), "-l", log}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			return err
		}
		s.nats = append(s.nats, cmd)
	}
	s.BusURL = strings.Join(clients, ",")
	// Ready when the cluster places a replicated stream (a meta leader is elected).
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := func() error {
			nc, err := nats.Connect(s.BusURL, nats.Timeout(time.Second))
			if err != nil {
				return err
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{Name: "SITE_READY", Subjects: []string{"site.ready"}, Replicas: s.cfg.NATS}); err != nil {
				return err
			}
			return js.DeleteStream(cctx, "SITE_READY")
		}()
		if err == nil {
			return nil
		}
		gone := false
		for i, c := range s.nats {
			// A server that exited is a zombie until waited for: signal 0 cannot tell, /proc can.
			if st, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid)); rerr != nil || strings.Contains(string(st), ") Z ") {
				gone = true
				err = fmt.Errorf("%w; nats-%d exited", err, i+1)
			}
		}
		if gone || time.Now().After(deadline) {
			return fmt.Errorf("site: NATS cluster not ready (try %d of 3): %w; logs: %s", try, err, tails(logs, 3))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tails is the last n lines of each file, for an error.
func tails(files []string, n int) string {
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		out = append(out, filepath.Base(f)+": "+strings.Join(lines[max(0, len(lines)-n):], " | "))
	}
	return strings.Join(out, "; ")
}

// StartNode starts a vigil node and waits until it is ready. A node that exits while starting
// because one of its ports was taken between FreeAddr and its bind (another process on the
// machine had it in between) is started again on fresh ports, up to three times; any other exit
// is an error that carries the end of the node's log (CI keeps no temporary files).
func (s *Site) StartNode(ctx context.Context, id string) (*Node, error) {
	s.mu.Lock()
	n := s.nodes[id]
	s.mu.Unlock()
	if n == nil {
		n = &Node{ID: id, addr: FreeAddr(), udp: FreeAddr()}
		n.URL = "http://" + n.addr
	}
	logPath := filepath.Join(s.cfg.Dir, id+".log")
	for try := 1; ; try++ {
		ok, err := s.startNode(n, logPath)
		if ok || err != nil {
			return n, err
		}
		tail := tails([]string{logPath}, 15)
		if try == 3 || !strings.Contains(tail, "address already in use") {
			return nil, fmt.Errorf("site: node %s exited while starting (try %d; see %s): %s", id, try, logPath, tail)
		}
		n.addr, n.udp = FreeAddr(), FreeAddr()
		n.URL = "http://" + n.addr
	}
}

// startNode starts n's process once and waits until it is ready (true) or has exited (false).
func (s *Site) startNode(n *Node, logPath string) (bool, error) {
	cfgPath := filepath.Join(s.cfg.Dir, n.ID+".yaml")
	if err := os.WriteFile(cfgPath, []byte(s.nodeConfig(n)), 0o600); err != nil {
		return false, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, err
	}
	cmd := exec.Command(s.cfg.Vigil[0], append(append([]string{}, s.cfg.Vigil[1:]...), "serve", "--config", cfgPath)...)
	cmd.Env = append(os.Environ(), s.cfg.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return false, err
	}
	n.cmd, n.done = cmd, make(chan struct{})
	n.stopping.Store(false)
	go func(done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(n.done)
	s.mu.Lock()
	s.nodes[n.ID] = n
	s.mu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if r, err := s.http.Get(n.URL + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return true, nil
			}
		}
		if !n.Alive() {
			return false, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("site: node %s not ready in 90 s: %s", n.ID, tails([]string{logPath}, 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Site) nodeConfig(n *Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data: %s\nhttp:\n  addr: %s\ndatabase:\n  url: %s\n", filepath.Join(s.cfg.Dir, n.ID), n.addr, s.cfg.DatabaseURL)
	if s.BusURL != "" {
		fmt.Fprintf(&b, "bus:\n  url: %s\n  replicas: %d\n", s.BusURL, min(s.cfg.NATS, 3))
	}
	fmt.Fprintf(&b, "cluster:\n  node: %s\n  advertise: %s\naccess:\n  secret_file: %s\nlive:\n  udp_addr: %s\n",
		n.ID, n.URL, filepath.Join(s.cfg.Dir, "secret"), n.udp)
	if s.cfg.S3 != nil {
		fmt.Fprintf(&b, "blobs:\n  s3:\n    endpoint: %s\n    access_key: %s\n    secret_key: %s\n", s.cfg.S3.Endpoint, s.cfg.S3.AccessKey, s.cfg.S3.SecretKey)
	}
	b.WriteString(s.cfg.Extra)
	return b.String()
}

// Node is the node named id (nil when none was started).
func (s *Site) Node(id string) *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[id]
}

// Live lists the nodes whose processes run, by id.
func (s *Site) Live() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Node
	for _, n := range s.nodes {
		if n.Alive() {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Kill ends a node's process with sig (SIGKILL: a crash; SIGTERM: a planned stop) and waits.
func (s *Site) Kill(id string, sig syscall.Signal) {
	s.Signal(id, sig)
	s.Wait(id)
}

// Signal sends sig to a node's process without waiting for it to end.
func (s *Site) Signal(id string, sig syscall.Signal) {
	if n := s.Node(id); n != nil && n.Alive() {
		n.stopping.Store(true)
		_ = n.cmd.Process.Signal(sig)
	}
}

// Wait waits for a node's process to end (a minute at most, then it is killed).
func (s *Site) Wait(id string) {
	n := s.Node(id)
	if n == nil {
		return
	}
	select {
	case <-n.done:
	case <-time.After(60 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// Close kills every process.
func (s *Site) Close() {
	for _, n := range s.Live() {
		s.Kill(n.ID, syscall.SIGKILL)
	}
	for _, c := range s.nats {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
}

// Call sends an admin's request to a node and decodes its JSON answer into out (when not nil).
func (s *Site) Call(ctx context.Context, n *Node, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, n.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	r, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	if out != nil {
		err = json.NewDecoder(r.Body).Decode(out)
	}
	return r.StatusCode, err
}

// Camera is one camera as GET /v1/cameras lists it.
type Camera struct {
	ID, State, Node string
}

// Placement is where each camera runs live, from every live node's own account of what it
// runs (a camera live on two nodes lists both).
func (s *Site) Placement(ctx context.Context) map[string][]string {
	out := map[string][]string{}
	for _, n := range s.Live() {
		if n.stopping.Load() {
			continue
		}
		var body struct{ Cameras []Camera }
		if code, err := s.Call(ctx, n, "GET", "/v1/cameras", nil, &body); err != nil || code != http.StatusOK {
			continue
		}
		for _, c := range body.Cameras {
			if c.State == "live" && c.Node == n.ID {
				out[c.ID] = append(out[c.ID], n.ID)
			}
		}
	}
	return out
}

// Settled waits until every one of cams runs live on exactly one node (and, when given, until
// also reports true of where they run), and returns where.
func (s *Site) Settled(ctx context.Context, cams int, within time.Duration, also ...func(where map[string]string) bool) (map[string]string, error) {
	deadline := time.Now().Add(within)
	for {
		p := s.Placement(ctx)
		ok := len(p) == cams
		where := map[string]string{}
		for c, on := range p {
			ok = ok && len(on) == 1
			where[c] = on[0]
		}
		for _, fn := range also {
			ok = ok && fn(where)
		}
		if ok {
			return where, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return where, fmt.Errorf("site: %d of %d cameras placed once after %v: %v", len(where), cams, within, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr is a free 127.0.0.1 port (TCP; the same number is used for UDP).
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Count is how many cameras each node runs, from where they run.
func Count(where map[string]string) map[string]int {
	per := map[string]int{}
	for _, n := range where {
		per[n]++
	}
	return per
}

// Busiest is the node running most cameras (the first by id among equals).
func Busiest(per map[string]int) string {
	best, most := "", -1
	for n, c := range per {
		if c > most || c == most && n < best {
			best, most = n, c
		}
	}
	return best
}

// FootageGap is the longest stretch in [from, to] that a camera's stored segments (the table
// segments) do not cover, from the first segment on.
func FootageGap(ctx context.Context, pool *pgxpool.Pool, camera string, from, to time.Time) (time.Duration, error) {
	rows, err := pool.Query(ctx, `SELECT start_time, end_time FROM segments WHERE camera = $1 AND end_time > $2 AND start_time < $3 ORDER BY start_time`, camera, from, to)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var worst time.Duration
	var covered time.Time
	for rows.Next() {
		var s, e time.Time
		if err := rows.Scan(&s, &e); err != nil {
			return 0, err
		}
		if !covered.IsZero() && s.Sub(covered) > worst {
			worst = s.Sub(covered)
		}
		if e.After(covered) {
			covered = e
		}
	}
	if covered.IsZero() {
		return to.Sub(from), rows.Err()
	}
	return worst, rows.Err()
}
