package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/core/space"
)

// Validate reports every problem at once, each naming its field. Every section is checked.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	c.validateCore(bad)
	c.validateCameras(bad)
	c.validatePipeline(bad)
	c.validateStorage(bad)
	c.validateLive(bad)
	c.validateAccess(bad)
	c.validateCluster(bad)
	return errors.Join(errs...)
}

type complain func(format string, a ...any)

func (c *Config) validateCore(bad complain) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format: %q is not one of text, json", c.Log.Format)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr: %q is not host:port", c.HTTP.Addr)
	}
	if c.HTTP.MaxConnections < 16 || c.HTTP.MaxConnections > 1<<20 {
		bad("http.max_connections: %d is outside 16..1048576", c.HTTP.MaxConnections)
	}
	if c.HTTP.MaxConnectionsPerAddress < 1 || c.HTTP.MaxConnectionsPerAddress > c.HTTP.MaxConnections {
		bad("http.max_connections_per_address: %d is outside 1..max_connections (%d)", c.HTTP.MaxConnectionsPerAddress, c.HTTP.MaxConnections)
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			bad("http.trusted_proxies: %q is not an address or a CIDR prefix (10.0.0.5, 10.0.0.0/24)", p)
		}
	}
	if u := c.Bus.URL.Reveal(); u != "" {
		for _, one := range strings.Split(u, ",") { // a NATS cluster: several URLs
			if err := checkURL(strings.TrimSpace(one), "nats", "tls", "ws", "wss"); err != nil {
				bad("bus.url: %v", err)
			}
		}
	}
	for _, r := range c.Cluster.Roles {
		if !slices.Contains(AllRoles, r) {
			bad("cluster.roles: %q is not a role (%s)", r, strings.Join(AllRoles, ", "))
		}
	}
	if c.Bus.Replicas < 0 || c.Bus.Replicas > 5 || c.Bus.Replicas > 1 && c.Bus.URL.Reveal() == "" {
		bad("bus.replicas: 1–5, and above 1 only with an external NATS cluster (bus.url)")
	}
	s := c.Streams
	if s.ReconnectMin <= 0 || s.ReconnectMax < s.ReconnectMin {
		bad("streams: reconnect_min (%s) must be > 0 and <= reconnect_max (%s)", s.ReconnectMin.D(), s.ReconnectMax.D())
	}
	if s.ReadTimeout <= 0 {
		bad("streams.read_timeout: must be > 0")
	}
	if s.ReaderQueue < 2 || s.ReaderQueue > 65536 {
		bad("streams.reader_queue: %d is outside 2..65536", s.ReaderQueue)
	}
	if !validTransport(s.Transport) || s.Transport == "" {
		bad("streams.transport: %q is not one of tcp, udp, auto", s.Transport)
	}
}

func (c *Config) validateCameras(bad complain) {
	seen := map[string]int{}
	for i, cam := range c.Cameras {
		if j, dup := seen[cam.ID]; dup {
			bad("cameras[%d].id: %q is already used by cameras[%d]", i, cam.ID, j)
		}
		seen[cam.ID] = i
		if err := checkRTSPURL(cam.URL.Reveal()); err != nil {
			bad("cameras[%d] (%s).url: %v", i, cam.ID, err)
		}
		if cam.DetectURL != "" {
			if err := checkRTSPURL(cam.DetectURL.Reveal()); err != nil {
				bad("cameras[%d] (%s).detect_url: %v", i, cam.ID, err)
			}
		}
		if !validTransport(cam.Transport) {
			bad("cameras[%d] (%s).transport: %q is not one of tcp, udp, auto", i, cam.ID, cam.Transport)
		}
		switch cam.Analyse {
		case "", "faces", "plates", "both", "none":
		default:
			bad("cameras[%d] (%s).analyse: %q is not one of faces, plates, both, none", i, cam.ID, cam.Analyse)
		}
		if cam.FPS < 0 || cam.FPS > 30 {
			bad("cameras[%d] (%s).fps: %v is outside 0..30", i, cam.ID, cam.FPS)
		}
		if cam.IdleFPS < 0 || cam.IdleFPS > 30 {
			bad("cameras[%d] (%s).idle_fps: %v is outside 0..30", i, cam.ID, cam.IdleFPS)
		}
		if cam.FootageDays < 0 {
			bad("cameras[%d] (%s).footage_days: must not be negative", i, cam.ID)
		}
		if err := cam.Masks.Check(); err != nil {
			bad("cameras[%d] (%s).masks: %v", i, cam.ID, err)
		}
	}
}

func (c *Config) validatePipeline(bad complain) {
	p := c.Pipeline
	if p.FPS <= 0 || p.FPS > 30 {
		bad("pipeline.fps: %v is outside (0, 30]", p.FPS)
	}
	if p.FaceWorkers < 0 || p.FaceWorkers > 64 || p.PlateWorkers < 0 || p.PlateWorkers > 64 {
		bad("pipeline: face_workers and plate_workers must be within 0..64")
	}
	if p.DoorMinFace < 0 || p.DoorMinFace > 0.8 {
		bad("pipeline.door_min_face: %g is outside 0..0.8 (a fraction of the picture's height; 0: every size)", p.DoorMinFace)
	}
	if p.CPUSlots < -1 || p.CPUSlots > 256 {
		bad("pipeline.cpu_slots: %d is outside -1..256 (0: one per core; -1: no limit)", p.CPUSlots)
	}
	if p.Queue < 1 || p.Queue > 4096 {
		bad("pipeline.queue: %d is outside 1..4096", p.Queue)
	}
	if p.OpenCVThreads < 0 || p.OpenCVThreads > 256 {
		bad("pipeline.opencv_threads: %d is outside 0..256", p.OpenCVThreads)
	}
	if p.MatchThreshold < 0 || p.MatchThreshold > 1.5 {
		bad("pipeline.match_threshold: %v is outside [0, 1.5] (0: the model's own)", p.MatchThreshold)
	}
	if _, err := space.SpaceNamed(p.FaceModel); err != nil {
		bad("pipeline.face_model: %v", err)
	}
}

// bucketName is S3's rule for bucket names.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (c *Config) validateStorage(bad complain) {
	if c.Footage.SegmentLength < Duration(time.Second) || c.Footage.SegmentLength > Duration(10*time.Minute) {
		bad("footage.segment_length: %s is outside 1s..10m", c.Footage.SegmentLength.D())
	}
	if c.Footage.Mode != "continuous" && c.Footage.Mode != "events" {
		bad("footage.mode: %q is not continuous or events", c.Footage.Mode)
	}
	if c.Footage.RetentionDays < 1 || c.Footage.MaxMBPerCamera < 0 {
		bad("footage: retention_days must be at least 1 and max_mb_per_camera not negative")
	}
	if c.Footage.PreRoll < 0 || c.Footage.PostRoll < 0 || c.Footage.PreRoll+c.Footage.PostRoll > Duration(10*time.Minute) {
		bad("footage: pre_roll and post_roll must not be negative, and at most 10m together")
	}
	if c.Database.RetentionDays < 1 {
		bad("database.retention_days: must be at least 1")
	}
	if u := c.Database.URL.Reveal(); u != "" {
		if err := checkURL(u, "postgres", "postgresql"); err != nil {
			bad("database.url: %v", err)
		}
	}
	s3 := c.Blobs.S3
	if s3.Endpoint != "" {
		if strings.Contains(s3.Endpoint, "://") {
			bad("blobs.s3.endpoint: %q is host:port, without a scheme (secure: true for https)", s3.Endpoint)
		} else if _, _, err := net.SplitHostPort(s3.Endpoint); err != nil {
			bad("blobs.s3.endpoint: %q is not host:port", s3.Endpoint)
		}
		if !bucketName.MatchString(s3.Bucket) {
			bad("blobs.s3.bucket: %q is not a valid bucket name (3–63 lower-case letters, digits, '.', '-')", s3.Bucket)
		}
		if s3.AccessKey == "" || s3.SecretKey == "" {
			bad("blobs.s3: access_key and secret_key are required with an endpoint")
		}
	}
	if c.Audit.CheckpointEvery < Duration(time.Minute) {
		bad("audit.checkpoint_every: %s is under 1m", c.Audit.CheckpointEvery.D())
	}
	if c.Sensors.CheckEvery < Duration(100*time.Millisecond) || c.Sensors.CheckEvery > Duration(time.Minute) {
		bad("sensors.check_every: %s is outside 100ms to 1m", c.Sensors.CheckEvery.D())
	}
	if st := c.Strangers; st.Every < Duration(100*time.Millisecond) || st.NightFrom < 0 || st.NightFrom > 23 || st.NightTo < 0 ||
		st.NightTo > 23 || st.NightDays < 1 || st.DoorTries < 1 {
		bad("strangers: every at least 100ms, night hours 0 to 23, night_days and door_tries at least 1")
	}
	if c.Blobs.SpoolMaxMB < 0 {
		bad("blobs.spool_max_mb: must not be negative")
	}
}

func (c *Config) validateLive(bad complain) {
	l := c.Live
	if !l.Enabled {
		return
	}
	if _, _, err := net.SplitHostPort(l.UDPAddr); err != nil {
		bad("live.udp_addr: %q is not host:port", l.UDPAddr)
	}
	if l.MaxViewers < 1 || l.MaxViewers > 100000 {
		bad("live.max_viewers: %d is outside 1..100000", l.MaxViewers)
	}
	if l.MaxViewsPerPrincipal < 1 || l.MaxViewsPerPrincipal > l.MaxViewers {
		bad("live.max_views_per_principal: %d is outside 1..max_viewers", l.MaxViewsPerPrincipal)
	}
	for i, ip := range l.PublicIPs {
		if net.ParseIP(ip) == nil {
			bad("live.public_ips[%d]: %q is not an IP address", i, ip)
		}
	}
	for i, s := range l.ICEServers {
		if len(s.URLs) == 0 {
			bad("live.ice_servers[%d]: no urls", i)
		}
		for _, u := range s.URLs {
			scheme, _, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				if s.Username == "" || s.Credential == "" {
					bad("live.ice_servers[%d]: %s needs a username and a credential", i, u)
				}
			default:
				bad("live.ice_servers[%d]: %q is not a stun:, stuns:, turn: or turns: URL", i, u)
			}
		}
	}
}

func (c *Config) validateAccess(bad complain) {
	m := c.Access.MQTT
	if m.URL == "" {
		return
	}
	if err := checkURL(m.URL, "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"); err != nil {
		bad("access.mqtt.url: %v", err)
	}
	if strings.ContainsAny(m.Topic, "#+") || strings.HasSuffix(m.Topic, "/") || m.Topic == "" {
		bad("access.mqtt.topic: %q must be a topic prefix without wildcards or a trailing /", m.Topic)
	}
}

func validTransport(t string) bool {
	switch t {
	case "", "tcp", "udp", "auto":
		return true
	}
	return false
}

func checkRTSPURL(raw string) error {
	return checkURL(raw, "rtsp", "rtsps")
}

// checkURL checks a URL's scheme and host (its password never appears in the error).
func checkURL(raw string, schemes ...string) error {
	if raw == "" {
		return errors.New("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("cannot be parsed (%s)", RedactURL(raw))
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fmt.Errorf("scheme %q is not %s", u.Scheme, strings.Join(schemes, " or "))
	}
	if u.Host == "" && !(u.Scheme == "postgres" || u.Scheme == "postgresql") { // postgres://user@/db?host=/socket
		return errors.New("has no host")
	}
	return nil
}

func (c *Config) validateCluster(bad complain) {
	cl := c.Cluster
	if cl.Node != "" && !nodeID.MatchString(cl.Node) {
		bad("cluster.node: %q: 1–64 letters, digits, '_' or '-'", cl.Node)
	}
	if cl.Advertise != "" {
		if u, err := url.Parse(cl.Advertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("cluster.advertise: %q is not an http(s) URL", cl.Advertise)
		}
	}
	if cl.Capacity < 0 || cl.Capacity > 1000 {
		bad("cluster.capacity: %v is outside 0..1000 (0: 1)", cl.Capacity)
	}
}

var nodeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
