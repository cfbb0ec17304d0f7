// Package config owns vigil's typed configuration: defaults, then a YAML file, then VIGIL_*
// environment variables, then Validate. Secrets have their own type and print redacted.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Secret is a string that never prints: logs, errors and check-config show it redacted.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// MarshalYAML keeps secrets out of printed configs.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Reveal returns the secret value for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// Config is the whole of vigil's configuration. Every field documents its default.
type Config struct {
	// Data is the data directory (gallery, bus store, later the database and footage). Default
	// $VIGIL_DATA, else ./data. The --data flag overrides.
	Data     string   `yaml:"data"`
	Log      Log      `yaml:"log"`
	HTTP     HTTP     `yaml:"http"`
	Models   Models   `yaml:"models"`
	Streams  Streams  `yaml:"streams"`
	Cameras  []Camera `yaml:"cameras"`
	Database Database `yaml:"database"`
	Pipeline Pipeline `yaml:"pipeline"`
	Bus      Bus      `yaml:"bus"`
	Blobs    Blobs    `yaml:"blobs"`
	Footage  Footage  `yaml:"footage"`
	Access   Access   `yaml:"access"`
	Live     Live     `yaml:"live"`
}

// Live configures the WebRTC live view (WHEP).
type Live struct {
	// Enabled serves POST /v1/live/{camera}/whep. Default true.
	Enabled bool `yaml:"enabled"`
	// UDPAddr is the one UDP port every WebRTC session uses. Default :8189.
	UDPAddr string `yaml:"udp_addr"`
	// ICEServers are STUN/TURN servers for viewers outside the LAN.
	ICEServers []ICEServer `yaml:"ice_servers"`
	// PublicIPs are advertised instead of the interfaces' addresses (a 1:1 NAT in front).
	PublicIPs []string `yaml:"public_ips"`
	// MaxViewers bounds the node's sessions. Default 1000.
	MaxViewers int `yaml:"max_viewers"`
	// BatchWrites gathers the sessions' packets into sendmmsg calls through one writer. Default
	// false: each viewer's writer sends its own packets, which spreads over the cores and held
	// more viewers in the live bench.
	BatchWrites bool `yaml:"batch_writes"`
	// ShedOverload ends the newest viewers, a twentieth every 5 s, while the relay's own frames
	// keep waiting too long (5 s in a row, frames over 500 ms), so that the others recover. Default true.
	ShedOverload bool `yaml:"shed_overload"`
}

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	URLs       []string `yaml:"urls"` // stun:host:3478, turn:host:3478?transport=udp
	Username   string   `yaml:"username"`
	Credential Secret   `yaml:"credential"`
}

// Access configures door control.
type Access struct {
	// MQTT, when its URL is set, also publishes every door command to an MQTT broker, signed
	// with the door's key, for controllers that subscribe there instead of long-polling.
	MQTT MQTT `yaml:"mqtt"`
}

// MQTT is a broker connection.
type MQTT struct {
	// URL is tcp://host:1883, ssl://host:8883 or ws://…; empty: off. Env VIGIL_MQTT_URL.
	URL string `yaml:"url"`
	// Topic is the prefix; door D's commands go to {topic}/D/commands. Default vigil/doors.
	Topic    string `yaml:"topic"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"` // env VIGIL_MQTT_PASSWORD
}

// Footage configures recording.
type Footage struct {
	// Enabled records every camera continuously (needs the event store). Default true.
	Enabled bool `yaml:"enabled"`
	// SegmentLength is the target length of a segment; each starts on a key frame. Default 10s.
	SegmentLength Duration `yaml:"segment_length"`
	// Mode is continuous or events (keep only footage around events, with pre- and post-roll).
	// Default continuous.
	Mode string `yaml:"mode"`
	// PreRoll and PostRoll bound the footage kept around an event in events mode. Defaults 5s, 10s.
	PreRoll  Duration `yaml:"pre_roll"`
	PostRoll Duration `yaml:"post_roll"`
	// RetentionDays deletes footage older than this. Default 30. cameras[].footage_days overrides.
	RetentionDays int `yaml:"retention_days"`
	// MaxMBPerCamera deletes a camera's oldest footage past this size. Default 0: no size bound.
	MaxMBPerCamera int64 `yaml:"max_mb_per_camera"`
}

// Blobs selects where snapshots (and later footage) are kept.
type Blobs struct {
	// S3, when its endpoint is set, is used instead of the filesystem under DATA/blobs; writes
	// that fail spool under DATA/spool and upload when it is back.
	S3 S3 `yaml:"s3"`
	// SpoolMaxMB caps the spool; past it the oldest spooled footage is dropped (counted), never
	// snapshots. Default 20480 (20 GiB).
	SpoolMaxMB int64 `yaml:"spool_max_mb"`
}

// S3 locates a bucket of any S3 service (path-style).
type S3 struct {
	Endpoint  string `yaml:"endpoint"` // host:port; env VIGIL_S3_ENDPOINT
	Bucket    string `yaml:"bucket"`   // default vigil
	AccessKey string `yaml:"access_key"`
	SecretKey Secret `yaml:"secret_key"` // env VIGIL_S3_SECRET_KEY
	Secure    bool   `yaml:"secure"`     // https
}

// Pipeline configures recognition.
type Pipeline struct {
	// Enabled runs recognition on the cameras. Default true.
	Enabled bool `yaml:"enabled"`
	// FPS is the default sampling rate per camera. Default 2.
	FPS float64 `yaml:"fps"`
	// KeyframesOnly samples key frames only (cheapest). Default false.
	KeyframesOnly bool `yaml:"keyframes_only"`
	// Motion is the motion gate threshold (mean grey levels); negative disables it. Default 1.5.
	Motion float64 `yaml:"motion"`
	// FaceWorkers and PlateWorkers size the recognizer pools. Default 1 each.
	FaceWorkers  int `yaml:"face_workers"`
	PlateWorkers int `yaml:"plate_workers"`
	// Queue is each pool's bounded drop-oldest queue length. Default 8.
	Queue int `yaml:"queue"`
	// OpenCVThreads is OpenCV's threads per inference. Default 1: one model set per worker, as
	// many workers as cores. 0 lets each inference use every core.
	OpenCVThreads int `yaml:"opencv_threads"`
	// DoorPriority puts door cameras' frames first in the recognizer queues (and drops them
	// last): someone is waiting at the door. Default true.
	DoorPriority bool `yaml:"door_priority"`
	// MatchThreshold is the face distance under which a match counts. Default 0.50.
	MatchThreshold float64 `yaml:"match_threshold"`
	// Gallery is the enrolled-people file. Default DATA/gallery.json.
	Gallery string `yaml:"gallery"`
}

// Bus selects the event bus.
type Bus struct {
	// URL of an external NATS server with JetStream; empty embeds one (data in DATA/nats).
	// Env VIGIL_BUS_URL.
	URL Secret `yaml:"url"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error. Default info. Env VIGIL_LOG_LEVEL.
	Level string `yaml:"level"`
	// Format is text or json. Default text. Env VIGIL_LOG_FORMAT.
	Format string `yaml:"format"`
}

// HTTP configures the API and metrics listener.
type HTTP struct {
	// Addr is the listen address of the API and /metrics. Default 127.0.0.1:8080. Env VIGIL_HTTP_ADDR.
	Addr string `yaml:"addr"`
}

// Models locates the model files.
type Models struct {
	// Dir holds the model files and is checked against the manifest. Default: $VIGIL_MODELS, else
	// ../shared/models relative to the repository root when it exists.
	Dir string `yaml:"dir"`
}

// Streams tunes camera sessions.
type Streams struct {
	// ReconnectMin is the first backoff step after a failure. Default 1s.
	ReconnectMin Duration `yaml:"reconnect_min"`
	// ReconnectMax caps the backoff. Default 30s.
	ReconnectMax Duration `yaml:"reconnect_max"`
	// ReadTimeout fails a session that receives nothing for this long. Default 10s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// ReaderQueue is the number of access units each reader of a camera may lag. Default 128.
	ReaderQueue int `yaml:"reader_queue"`
	// Transport is the default RTSP transport: tcp, udp or auto (UDP, then TCP). Default tcp.
	// Env VIGIL_STREAMS_TRANSPORT.
	Transport string `yaml:"transport"`
}

// Camera is one RTSP source.
type Camera struct {
	// ID names the camera in the API, logs and metrics. Default cam001, cam002… by position.
	ID string `yaml:"id"`
	// URL is rtsp://[user:pass@]host[:port]/path. Required. Credentials print redacted.
	URL Secret `yaml:"url"`
	// Transport overrides streams.transport for this camera.
	Transport string `yaml:"transport"`
	// Analyse selects recognizers: faces, plates, both or none. Default both.
	Analyse string `yaml:"analyse"`
	// FPS overrides pipeline.fps for this camera.
	FPS float64 `yaml:"fps"`
	// FootageDays overrides footage.retention_days for this camera.
	FootageDays int `yaml:"footage_days"`
	// Map places the camera on the site map: [x, y] in the site plan's pixels (timelines and the
	// console's map use it). Optional.
	Map *[2]float64 `yaml:"map"`
}

// Database configures the event store's PostgreSQL.
type Database struct {
	// Enabled stores events. Default true.
	Enabled bool `yaml:"enabled"`
	// URL is a PostgreSQL connection string. Default empty: vigil runs its own cluster under
	// DATA/pg with the system's PostgreSQL binaries. Env VIGIL_DATABASE_URL.
	URL Secret `yaml:"url"`
	// RetentionDays drops event partitions older than this. Default 90.
	RetentionDays int `yaml:"retention_days"`
}

// Duration is a time.Duration that reads "1s", "500ms" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (examples: 500ms, 2s, 1m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML prints durations as strings.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Log:      Log{Level: "info", Format: "text"},
		HTTP:     HTTP{Addr: "127.0.0.1:8080"},
		Database: Database{Enabled: true, RetentionDays: 90},
		Footage: Footage{Enabled: true, SegmentLength: Duration(10 * time.Second), RetentionDays: 30, Mode: "continuous",
			PreRoll: Duration(5 * time.Second), PostRoll: Duration(10 * time.Second)},
		Blobs: Blobs{SpoolMaxMB: 20480},
		Live:  Live{Enabled: true, UDPAddr: ":8189", MaxViewers: 1000, ShedOverload: true},
		Pipeline: Pipeline{Enabled: true, FPS: 2, Motion: 1.5, FaceWorkers: 1, PlateWorkers: 1, Queue: 8,
			MatchThreshold: 0.5, OpenCVThreads: 1, DoorPriority: true},
		Streams: Streams{
			ReconnectMin: Duration(time.Second),
			ReconnectMax: Duration(30 * time.Second),
			ReadTimeout:  Duration(10 * time.Second),
			ReaderQueue:  128,
			Transport:    "tcp",
		},
	}
}

// Load reads defaults, then the file (if path is not empty), then the environment, and validates.
func Load(path string, env func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return c, err
		}
		defer f.Close()
		if err := decode(f, &c); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	if env == nil {
		env = os.LookupEnv
	}
	if err := c.applyEnv(env); err != nil {
		return c, err
	}
	c.fillCameraIDs()
	c.fillDerived()
	if err := c.Validate(); err != nil {
		if path != "" {
			return c, fmt.Errorf("%s: %w", path, err)
		}
		return c, err
	}
	return c, nil
}

func decode(r io.Reader, c *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true) // a misspelt key is an error, not a silently ignored setting
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (c *Config) applyEnv(env func(string) (string, bool)) error {
	str := map[string]*string{
		"VIGIL_LOG_LEVEL":         &c.Log.Level,
		"VIGIL_LOG_FORMAT":        &c.Log.Format,
		"VIGIL_HTTP_ADDR":         &c.HTTP.Addr,
		"VIGIL_MODELS":            &c.Models.Dir,
		"VIGIL_STREAMS_TRANSPORT": &c.Streams.Transport,
		"VIGIL_DATA":              &c.Data,
	}
	for k, p := range str {
		if v, ok := env(k); ok && v != "" {
			*p = v
		}
	}
	if v, ok := env("VIGIL_DATABASE_URL"); ok && v != "" {
		c.Database.URL = Secret(v)
	}
	if v, ok := env("VIGIL_S3_ENDPOINT"); ok && v != "" {
		c.Blobs.S3.Endpoint = v
	}
	if v, ok := env("VIGIL_S3_SECRET_KEY"); ok && v != "" {
		c.Blobs.S3.SecretKey = Secret(v)
	}
	if v, ok := env("VIGIL_MQTT_URL"); ok && v != "" {
		c.Access.MQTT.URL = v
	}
	if v, ok := env("VIGIL_MQTT_PASSWORD"); ok && v != "" {
		c.Access.MQTT.Password = Secret(v)
	}
	if v, ok := env("VIGIL_BUS_URL"); ok && v != "" {
		c.Bus.URL = Secret(v)
	}
	if v, ok := env("VIGIL_STREAMS_READER_QUEUE"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("VIGIL_STREAMS_READER_QUEUE: %q is not a number", v)
		}
		c.Streams.ReaderQueue = n
	}
	if v, ok := env("VIGIL_CAMERAS"); ok && v != "" {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				c.Cameras = append(c.Cameras, Camera{URL: Secret(u)})
			}
		}
	}
	return nil
}

// AddCameras appends cameras given by URL (the --camera flag) and names them.
func (c *Config) AddCameras(urls []string) {
	for _, u := range urls {
		c.Cameras = append(c.Cameras, Camera{URL: Secret(u)})
	}
	c.fillCameraIDs()
}

// fillDerived sets defaults that depend on other fields.
func (c *Config) fillDerived() {
	if c.Data == "" {
		c.Data = "data"
	}
	if c.Blobs.S3.Endpoint != "" && c.Blobs.S3.Bucket == "" {
		c.Blobs.S3.Bucket = "vigil"
	}
	if c.Pipeline.Gallery == "" {
		c.Pipeline.Gallery = filepath.Join(c.Data, "gallery.json")
	}
}

func (c *Config) fillCameraIDs() {
	for i := range c.Cameras {
		if c.Cameras[i].ID == "" {
			c.Cameras[i].ID = fmt.Sprintf("cam%03d", i+1)
		}
	}
}

// Validate reports every problem at once, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
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
	seen := map[string]int{}
	for i, cam := range c.Cameras {
		if j, dup := seen[cam.ID]; dup {
			bad("cameras[%d].id: %q is already used by cameras[%d]", i, cam.ID, j)
		}
		seen[cam.ID] = i
		if err := checkRTSPURL(cam.URL.Reveal()); err != nil {
			bad("cameras[%d] (%s).url: %v", i, cam.ID, err)
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
	}
	p := c.Pipeline
	if p.FPS <= 0 || p.FPS > 30 {
		bad("pipeline.fps: %v is outside (0, 30]", p.FPS)
	}
	if p.FaceWorkers < 0 || p.FaceWorkers > 64 || p.PlateWorkers < 0 || p.PlateWorkers > 64 {
		bad("pipeline: face_workers and plate_workers must be within 0..64")
	}
	if p.Queue < 1 || p.Queue > 4096 {
		bad("pipeline.queue: %d is outside 1..4096", p.Queue)
	}
	if c.Footage.SegmentLength < Duration(time.Second) || c.Footage.SegmentLength > Duration(10*time.Minute) {
		bad("footage.segment_length: %s is outside 1s..10m", c.Footage.SegmentLength.D())
	}
	if c.Footage.Mode != "continuous" && c.Footage.Mode != "events" {
		bad("footage.mode: %q is not continuous or events", c.Footage.Mode)
	}
	if c.Footage.RetentionDays < 1 || c.Footage.MaxMBPerCamera < 0 {
		bad("footage: retention_days must be at least 1 and max_mb_per_camera not negative")
	}
	if c.Database.RetentionDays < 1 {
		bad("database.retention_days: must be at least 1")
	}
	if p.MatchThreshold <= 0 || p.MatchThreshold > 1.5 {
		bad("pipeline.match_threshold: %v is outside (0, 1.5]", p.MatchThreshold)
	}
	return errors.Join(errs...)
}

func validTransport(t string) bool {
	switch t {
	case "", "tcp", "udp", "auto":
		return true
	}
	return false
}

func checkRTSPURL(raw string) error {
	if raw == "" {
		return errors.New("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("cannot be parsed (%s)", RedactURL(raw))
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return fmt.Errorf("scheme %q is not rtsp or rtsps", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// RedactURL hides the password of a URL so it can be logged.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "[redacted]@" + raw[i+1:]
		}
		return raw
	}
	return u.Redacted()
}

// Redacted renders the effective configuration as YAML with secrets hidden. Camera URLs show
// their host and path with the password replaced.
func (c Config) Redacted() string {
	type cam struct {
		ID        string  `yaml:"id"`
		URL       string  `yaml:"url"`
		Transport string  `yaml:"transport,omitempty"`
		Analyse   string  `yaml:"analyse,omitempty"`
		FPS       float64 `yaml:"fps,omitempty"`
	}
	view := struct {
		Data     string   `yaml:"data"`
		Log      Log      `yaml:"log"`
		HTTP     HTTP     `yaml:"http"`
		Models   Models   `yaml:"models"`
		Streams  Streams  `yaml:"streams"`
		Cameras  []cam    `yaml:"cameras"`
		Database Database `yaml:"database"`
		Pipeline Pipeline `yaml:"pipeline"`
		Bus      Bus      `yaml:"bus"`
		Blobs    Blobs    `yaml:"blobs"`
		Footage  Footage  `yaml:"footage"`
		Access   Access   `yaml:"access"`
		Live     Live     `yaml:"live"`
	}{Data: c.Data, Log: c.Log, HTTP: c.HTTP, Models: c.Models, Streams: c.Streams, Database: c.Database, Pipeline: c.Pipeline,
		Bus: c.Bus, Blobs: c.Blobs, Footage: c.Footage, Access: c.Access, Live: c.Live}
	for _, k := range c.Cameras {
		view.Cameras = append(view.Cameras, cam{ID: k.ID, URL: RedactURL(k.URL.Reveal()), Transport: k.Transport, Analyse: k.Analyse, FPS: k.FPS})
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(view)
	return b.String()
}
