// Command cluster measures vigil as several nodes of one site, every part a real process on
// 127.0.0.1 (internal/testkit/site): three nats-server processes clustered with JetStream, three
// `vigil serve` processes, versitygw for footage, PostgreSQL, camsim.
//
//   - failover: kill -9 of the node running most cameras, until every camera runs live again on
//     the others; p50 and max over --kills kills (the killed node restarts between them);
//   - planned handover: SIGTERM of a node, until its cameras run elsewhere, and the longest
//     footage gap of a handed-over camera;
//   - overhead of clustering: CPU, memory and bus messages per camera of the cluster against the
//     same cameras on one node with its embedded bus (the default), in the same run;
//   - on paper: nodes for the 1,231-stream site with a spare, and for 1,000 such sites.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/bench/measure"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/site"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

type opts struct {
	cams, kills int
	window      time.Duration
	vigil       string
}

func main() {
	var o opts
	flag.IntVar(&o.cams, "cameras", 30, "cameras (camsim, 720p; recorded, not analysed)")
	flag.IntVar(&o.kills, "kills", 10, "kill -9 rounds")
	flag.DurationVar(&o.window, "window", 30*time.Second, "measured time for the overhead")
	flag.StringVar(&o.vigil, "vigil", "bin/vigil", "vigil binary")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "cluster bench:", err)
		os.Exit(1)
	}
}

// usage is what a set of processes used over a window.
type usage struct {
	cpu    time.Duration
	busCPU time.Duration // of it, the NATS servers'
	procs  int
	rssMB  float64
	busMsg float64 // client messages per second into the bus servers
}

func run(o opts) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "vigil-cluster-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	clip, err := camsim.SharedSmallClip(ctx)
	if err != nil {
		return err
	}
	simAddr := site.FreeAddr()
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: simAddr, Cameras: o.cams}, []*camsim.Clip{clip}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()
	s3, stopS3, err := startS3(filepath.Join(work, "s3"))
	if err != nil {
		return err
	}
	defer stopS3()

	fmt.Printf("%d cameras (camsim 720p, recorded to S3 in 2 s segments, not analysed); lease TTL 6 s, renewed every 1 s\n", o.cams)
	solo, err := overhead(ctx, o, work, "solo", -1, []string{"solo"}, simAddr, s3)
	if err != nil {
		return fmt.Errorf("one node: %w", err)
	}
	var s *site.Site
	var pool *pgxpool.Pool
	clustered, err := overhead(ctx, o, work, "cluster", 3, []string{"node-a", "node-b", "node-c"}, simAddr, s3, func(st *site.Site, p *pgxpool.Pool) {
		s, pool = st, p
	})
	if err != nil {
		return fmt.Errorf("three nodes: %w", err)
	}
	defer s.Close()
	defer pool.Close()
	per := func(u usage) string {
		return fmt.Sprintf("%.3f%% of a core, %.1f MB per camera", 100*u.cpu.Seconds()/o.window.Seconds()/float64(o.cams), u.rssMB/float64(o.cams))
	}
	fmt.Printf("overhead: one node, embedded bus: %s\n", per(solo))
	fmt.Printf("overhead: three nodes + three NATS servers: %s (the NATS servers %.3f%% of a core per camera); %.1f client messages/s into the bus (%.2f per camera)\n",
		per(clustered), 100*clustered.busCPU.Seconds()/o.window.Seconds()/float64(o.cams), clustered.busMsg, clustered.busMsg/float64(o.cams))
	fmt.Printf("overhead ratio (cluster / one node, same cameras, same run): CPU %.2f×, memory %.2f×\n",
		clustered.cpu.Seconds()/solo.cpu.Seconds(), clustered.rssMB/solo.rssMB)

	// Failover.
	var took []time.Duration
	for i := 0; i < o.kills; i++ {
		where, err := s.Settled(ctx, o.cams, 60*time.Second, func(w map[string]string) bool { return len(site.Count(w)) == 3 })
		if err != nil {
			return err
		}
		victim := site.Busiest(site.Count(where))
		t0 := time.Now()
		s.Kill(victim, syscall.SIGKILL)
		if _, err := s.Settled(ctx, o.cams, 60*time.Second); err != nil {
			return fmt.Errorf("kill %d: %w", i+1, err)
		}
		took = append(took, time.Since(t0))
		fmt.Printf("kill -9 %d: %s ran %d cameras; all live again after %v\n", i+1, victim, site.Count(where)[victim], took[i].Round(10*time.Millisecond))
		if _, err := s.StartNode(ctx, victim); err != nil {
			return err
		}
	}
	slices.Sort(took)
	fmt.Printf("failover (kill -9 → every camera live elsewhere), %d kills: p50 %v, max %v (lease TTL 6 s; goal ≤ 10 s)\n",
		len(took), took[len(took)/2].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond))

	// Planned handover.
	where, err := s.Settled(ctx, o.cams, 60*time.Second, func(w map[string]string) bool { return len(site.Count(w)) == 3 })
	if err != nil {
		return err
	}
	time.Sleep(12 * time.Second) // the last kill's gap well behind the measured window
	victim := site.Busiest(site.Count(where))
	t0 := time.Now()
	s.Signal(victim, syscall.SIGTERM)
	if _, err := s.Settled(ctx, o.cams, 60*time.Second); err != nil {
		return err
	}
	handover := time.Since(t0)
	s.Wait(victim)
	time.Sleep(8 * time.Second)
	var worst time.Duration
	for c, n := range where {
		if n == victim {
			g, err := site.FootageGap(ctx, pool, c, t0.Add(-3*time.Second), time.Now())
			if err != nil {
				return err
			}
			worst = max(worst, g)
		}
	}
	fmt.Printf("planned handover (SIGTERM): %d cameras live elsewhere after %v; longest footage gap %v (segments of 2 s; goal: no lost segment)\n",
		site.Count(where)[victim], handover.Round(10*time.Millisecond), worst.Round(time.Millisecond))
	paper(o, solo, clustered)
	return nil
}

// overhead runs a site of nodes (natsServers -1: each its embedded bus), places every camera,
// and measures its processes over the window. keep, when given, receives the running site;
// otherwise it is closed.
func overhead(ctx context.Context, o opts, work, name string, natsServers int, nodes []string, simAddr string, s3 *site.S3, keep ...func(*site.Site, *pgxpool.Pool)) (usage, error) {
	dbURL, drop, err := testenv.CreateDB(ctx)
	if err != nil {
		return usage{}, err
	}
	dir := filepath.Join(work, name)
	_ = os.MkdirAll(dir, 0o700)
	s, err := site.Start(ctx, site.Config{Vigil: []string{o.vigil}, Dir: dir, DatabaseURL: dbURL, NATS: natsServers, S3: s3,
		Extra: "pipeline:\n  enabled: false\nfootage:\n  segment_length: 2s\nlog:\n  level: warn\n"})
	if err != nil {
		drop()
		return usage{}, err
	}
	pool, _ := pgxpool.New(ctx, dbURL)
	done := func() {
		pool.Close()
		s.Close()
		drop()
	}
	for _, id := range nodes {
		if _, err := s.StartNode(ctx, id); err != nil {
			done()
			return usage{}, err
		}
	}
	first := s.Node(nodes[0])
	for i := 1; i <= o.cams; i++ {
		body := map[string]string{"id": fmt.Sprintf("cam%03d", i), "url": "rtsp://" + simAddr + camsim.CameraPath(i), "analyse": "none"}
		if code, err := s.Call(ctx, first, "POST", "/v1/cameras", body, nil); err != nil || code != 201 {
			done()
			return usage{}, fmt.Errorf("add camera %d: %d %v", i, code, err)
		}
	}
	if _, err := s.Settled(ctx, o.cams, 60*time.Second, func(w map[string]string) bool { return len(site.Count(w)) == len(nodes) }); err != nil {
		done()
		return usage{}, err
	}
	time.Sleep(5 * time.Second) // warm: segments flowing
	pids := slices.Clone(s.NATSPIDs())
	for _, n := range s.Live() {
		pids = append(pids, n.PID())
	}
	cpu0, bus0 := cpuOf(pids), cpuOf(s.NATSPIDs())
	msg0, _ := s.NATSMessages()
	time.Sleep(o.window)
	u := usage{cpu: cpuOf(pids) - cpu0, busCPU: cpuOf(s.NATSPIDs()) - bus0, procs: len(s.Live())}
	msg1, _ := s.NATSMessages()
	u.busMsg = float64(msg1-msg0) / o.window.Seconds()
	for _, p := range pids {
		u.rssMB += float64(measure.RSSKB(p)) / 1024
	}
	if len(keep) > 0 {
		keep[0](s, pool)
	} else {
		done()
	}
	return u, nil
}

func cpuOf(pids []int) time.Duration {
	var t time.Duration
	for _, p := range pids {
		t += measure.ProcCPU(p)
	}
	return t
}

// paper sizes the reference site and 1,000 of them from the measured figures.
func paper(o opts, solo, clustered usage) {
	const (
		streams       = 1231
		analysed      = 625 + 600 // face cameras and door units: faces analysed
		plates        = 6
		perNode       = 26 // analysed cameras per 2-core node (README, capacity bench)
		eventsPerDay  = 90000
		bitrateMbit   = 1.5
		sites         = 1000
		peakOverMean  = 10
		copyPerSecond = 41000 // event store ingest through the bus (README)
	)
	nodes := (analysed+plates+perNode-1)/perNode + 1
	clusterCPU := (clustered.cpu - solo.cpu).Seconds() / o.window.Seconds() / float64(o.cams) // cores per camera
	busPerCam := clustered.busMsg / float64(o.cams)
	fmt.Printf("on paper, the reference site (%d streams): %d analysed at %d per 2-core node → %d nodes with one spare; clustering adds %.4f of a core per camera (%.1f cores site-wide) and %.0f bus messages/s\n",
		streams, analysed+plates, perNode, nodes, clusterCPU, clusterCPU*streams, busPerCam*streams)
	evs := float64(eventsPerDay) / 86400 * peakOverMean * sites
	fmt.Printf("on paper, %d sites: %d nodes; events %.0f/s at peak (PostgreSQL ingest measured %d/s on 2 cores: one database per ~%d sites, or partitioned by site); bus %.1f M messages/s (one NATS cluster per site or region: leases and heartbeats never cross sites); footage %.2f Tb/s into S3 (%.2f Gb/s per site: one bucket and S3 endpoint per site or region)\n",
		sites, nodes*sites, evs, copyPerSecond, int(copyPerSecond/(evs/sites)), busPerCam*streams*sites/1e6, bitrateMbit*streams*sites/1e6, bitrateMbit*streams/1e3)
}

// startS3 runs versitygw over dir.
func startS3(dir string) (*site.S3, func(), error) {
	bin := testenv.VersityGW()
	if bin == "" {
		return nil, nil, fmt.Errorf("versitygw is not installed (scripts/setup.sh installs it)")
	}
	_ = os.MkdirAll(dir, 0o700)
	s3 := &site.S3{Endpoint: site.FreeAddr(), AccessKey: "vigilbench", SecretKey: "vigilbenchsecret"}
	cmd := exec.Command(bin, "--access", s3.AccessKey, "--secret", s3.SecretKey, "--port", s3.Endpoint, "posix", dir)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", s3.Endpoint); err == nil {
			c.Close()
			return s3, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, nil, fmt.Errorf("versitygw did not listen on %s", s3.Endpoint)
}
