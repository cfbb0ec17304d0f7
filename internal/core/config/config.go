// Package config owns vigil's typed configuration: defaults, then a YAML file, then VIGIL_*
// environment variables, then Validate. Secrets have their own type and print redacted. Each
// field names its YAML key and, where it has one, its environment variable in its struct tags:
// the environment mapping (load.go) and the redacted print (redact.go) are read from them, so a
// new key cannot drift from either.
package config

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// Config is the whole of vigil's configuration. Every field documents its default.
type Config struct {
	// Data is the data directory (gallery, bus store, the managed database, footage). Default
	// ./data. The --data flag overrides.
	Data      string    `yaml:"data" env:"VIGIL_DATA"`
	Log       Log       `yaml:"log"`
	HTTP      HTTP      `yaml:"http"`
	Models    Models    `yaml:"models"`
	Streams   Streams   `yaml:"streams"`
	Cameras   []Camera  `yaml:"cameras" env:"VIGIL_CAMERAS"` // env: comma-separated RTSP URLs, appended
	Database  Database  `yaml:"database"`
	Pipeline  Pipeline  `yaml:"pipeline"`
	Bus       Bus       `yaml:"bus"`
	Blobs     Blobs     `yaml:"blobs"`
	Footage   Footage   `yaml:"footage"`
	Access    Access    `yaml:"access"`
	Sensors   Sensors   `yaml:"sensors"`
	Strangers Strangers `yaml:"strangers"`
	Audit     Audit     `yaml:"audit"`
	Live      Live      `yaml:"live"`
	Cluster   Cluster   `yaml:"cluster"`
}

// Cluster says who this node is among the site's nodes (they share bus.url, the database and
// the blob store).
type Cluster struct {
	// Node is this node's id. Default the host name.
	Node string `yaml:"node" env:"VIGIL_NODE"`
	// Advertise is the URL other nodes and browsers reach this node's API on. Default
	// http://HTTP_ADDR as bound.
	Advertise string `yaml:"advertise" env:"VIGIL_ADVERTISE"`
	// Capacity weighs this node against the others when cameras are placed. Default 1.
	Capacity float64 `yaml:"capacity"`
	// Roles say what the node does: cameras (placement, ingest, analysis, recording, live
	// view, and auto-unlock for the cameras it runs), api (the HTTP API and console), doors
	// (door controllers' endpoints and the MQTT bridge), search (the face and plate indexes;
	// other nodes pass searches to a search node). Empty: all four.
	Roles []string `yaml:"roles" env:"VIGIL_ROLES"`
}

// Audit configures the audit chain's protections outside the database.
type Audit struct {
	// Anchor is the file holding the chain's newest seq and hash, rewritten after each commit;
	// verify fails when it is missing. Default DATA/audit.anchor. Keep it where the database's
	// administrators cannot write.
	Anchor string `yaml:"anchor"`
	// CheckpointKey is an Ed25519 private key (vigil audit keygen) with which serve signs the
	// chain's head every CheckpointEvery. Empty: no automatic checkpoints (vigil audit
	// checkpoint --key signs one). Keep it off the database's machine.
	CheckpointKey string `yaml:"checkpoint_key" env:"VIGIL_AUDIT_CHECKPOINT_KEY"`
	// CheckpointEvery is how often serve signs the head. Default 1h.
	CheckpointEvery Duration `yaml:"checkpoint_every"`
	// CheckpointPub lists the public keys verify trusts. Default: CheckpointKey's .pub beside it.
	CheckpointPub []string `yaml:"checkpoint_pub"`
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
	// MaxViewsPerPrincipal bounds one principal's live views (a 16-camera wall on two screens).
	// Default 32.
	MaxViewsPerPrincipal int `yaml:"max_views_per_principal"`
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
	// SecretFile holds the server's credential secret (32 bytes in hex), made on first start:
	// card numbers, PINs and QR codes are stored keyed with it, so the database alone does not
	// give them away. Every node of a site must use the same file; lose it and every card, PIN
	// and QR code must be issued again. Default DATA/access.secret.
	SecretFile string `yaml:"secret_file" env:"VIGIL_ACCESS_SECRET_FILE"`
	// MQTT, when its URL is set, also publishes every door command to an MQTT broker, signed
	// with the door's key, for controllers that subscribe there instead of long-polling.
	MQTT MQTT `yaml:"mqtt"`
}

// Sensors configures the site's sensors (fire and smoke detectors, sprinklers, door contacts,
// panic buttons): registered through POST /v1/sensors, reporting over MQTT or the signed webhook.
type Sensors struct {
	// MQTT is the broker they report to, on {topic}/{sensor}/{alarm|clear|heartbeat}. Empty URL:
	// access.mqtt's broker when that is set, else none (the webhook still works). Topic default
	// vigil/sensors.
	MQTT MQTT `yaml:"mqtt"`
	// CheckEvery is how often missed heartbeats are looked for. Default 5s.
	CheckEvery Duration `yaml:"check_every"`
}

// Strangers configures the clustering of faces that matched no one into anonymous identities
// (on nodes with the search role) and the stranger rules.
type Strangers struct {
	// Enabled clusters unmatched faces. Default true.
	Enabled bool `yaml:"enabled"`
	// Every is how often new faces are clustered. Default 5s.
	Every Duration `yaml:"every"`
	// NightFrom and NightTo are the night's local hours (default 22 and 6); a stranger seen at
	// night on NightDays distinct nights within 7 days (default 3) raises stranger_at_night.
	NightFrom int `yaml:"night_from"`
	NightTo   int `yaml:"night_to"`
	NightDays int `yaml:"night_days"`
	// DoorTries: a stranger seen this many times at door cameras within 10 minutes (default 3)
	// raises stranger_at_door.
	DoorTries int `yaml:"door_tries"`
}

// Broker is the sensors' broker: their own, else the doors'.
func (s Sensors) Broker(doors MQTT) MQTT {
	if s.MQTT.URL != "" {
		return s.MQTT
	}
	m := doors
	m.Topic = s.MQTT.Topic
	return m
}

// MQTT is a broker connection.
type MQTT struct {
	// URL is tcp://host:1883, ssl://host:8883 or ws://…; empty: off.
	URL string `yaml:"url" env:"VIGIL_MQTT_URL"`
	// Topic is the prefix; door D's commands go to {topic}/D/commands. Default vigil/doors.
	Topic    string `yaml:"topic"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password" env:"VIGIL_MQTT_PASSWORD"`
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
	Endpoint  string `yaml:"endpoint" env:"VIGIL_S3_ENDPOINT"` // host:port
	Bucket    string `yaml:"bucket"`                           // default vigil
	AccessKey string `yaml:"access_key" env:"VIGIL_S3_ACCESS_KEY"`
	SecretKey Secret `yaml:"secret_key" env:"VIGIL_S3_SECRET_KEY"`
	Secure    bool   `yaml:"secure"` // https
}

// Pipeline configures recognition.
type Pipeline struct {
	// Enabled runs recognition on the cameras. Default true.
	Enabled bool `yaml:"enabled"`
	// FPS is the default sampling rate per camera. Default 2.
	FPS float64 `yaml:"fps"`
	// KeyframesOnly samples key frames only (cheapest). Default false.
	KeyframesOnly bool `yaml:"keyframes_only"`
	// Motion is the motion gate's threshold: a block whose grey level changed by 6× this moved, and
	// the detector runs on the regions that moved; negative disables the gate. Default 1.5.
	Motion float64 `yaml:"motion"`
	// FaceWorkers and PlateWorkers size the recognizer pools; 0 turns one off. FaceWorkers
	// defaults to one more than the cores (GOMAXPROCS): the pipeline runs one native call per
	// core, door cameras' first, and the extra worker keeps a core busy while another waits
	// for its main-stream shot (bench/site: three on two cores). PlateWorkers defaults to 1:
	// plates are read only on the cameras that analyse them.
	FaceWorkers  int `yaml:"face_workers"`
	PlateWorkers int `yaml:"plate_workers"`
	// Queue is each pool's bounded queue length, at least: it grows to a fourth of the cameras
	// analysed (frames of cameras in step come in bursts). Default 8.
	Queue int `yaml:"queue"`
	// OpenCVThreads is OpenCV's threads per inference. Default 1: one model set per worker, as
	// many workers as cores. 0 lets each inference use every core.
	OpenCVThreads int `yaml:"opencv_threads"`
	// ONNXRuntime says what runs the face detector, the face embedder and the plate models: ""
	// (the default) ONNX Runtime's C library where the verified release is installed
	// (scripts/fetch-onnxruntime.sh puts it in the user's cache), else OpenCV; a path: that
	// library, which must load; "off": OpenCV. Both give the same faces, descriptions and
	// plates (TestRuntimesAgree, TestPlateRuntimesAgree); ONNX Runtime detects faces 2.9× and
	// reads plates 3.4× faster on one core (BenchmarkRuntimes).
	ONNXRuntime string `yaml:"onnxruntime" env:"VIGIL_ONNXRUNTIME"`
	// DoorMinFace is the smallest face a door camera must find, as a fraction of its analysed
	// picture's height (0, the default: every size). A door unit that sees whoever waits at it
	// up close can say so (0.2: a fifth of the height): its frames are searched at a smaller
	// scale and each face found is searched for again in a small window of the main picture,
	// for its landmarks; detection then costs about a third (bench/site: vigil's CPU at 90
	// cameras 117% → 102% of a core). Faces smaller than this at a door camera are not found.
	DoorMinFace float64 `yaml:"door_min_face"`
	// CPUSlots is how many native calls (decodes, model runs) run at once, door cameras' work
	// first. 0, the default: one per core (GOMAXPROCS), so that a door frame's detection waits
	// only for the calls already running and then has a core to itself. One more than the cores
	// analyses more cameras where the Go side and other processes leave gaps between the calls,
	// at the door frames' expense (bench/site, a thirteenth machine, before sub-stream key frames
	// had a slot of their own: 120 sub-stream cameras against 105 with two slots, door p99 295
	// against 199 ms). Sub-stream key frames' decodes have one more slot of their own. -1: no
	// limit.
	CPUSlots int `yaml:"cpu_slots"`
	// DoorPriority puts door cameras' frames first in the recognizer queues (and drops them
	// last): someone is waiting at the door. Default true.
	DoorPriority bool `yaml:"door_priority"`
	// FaceModel is the face embedding model (space): intel-0095 (default) or dlib-v1. Templates,
	// face events and the search index carry it; changing it needs `vigil faces reembed`.
	FaceModel string `yaml:"face_model" env:"VIGIL_FACE_MODEL"`
	// MatchThreshold is the face distance under which a match counts. Default 0: the model's
	// calibrated "possible" distance (README "Faces").
	MatchThreshold float64 `yaml:"match_threshold"`
	// Gallery is the enrolled-people file. Default DATA/gallery.json.
	Gallery string `yaml:"gallery"`
}

// Bus selects the event bus.
type Bus struct {
	// URL of an external NATS server with JetStream; empty embeds one (data in DATA/nats).
	URL SecretURL `yaml:"url" env:"VIGIL_BUS_URL"`
	// Replicas is how many servers of an external NATS cluster keep each stream and key-value
	// bucket vigil makes (1–5; 3 in a 3-server cluster, so that leases, membership and the
	// events survive a server's death). Default 1.
	Replicas int `yaml:"replicas" env:"VIGIL_BUS_REPLICAS"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level" env:"VIGIL_LOG_LEVEL"`
	// Format is text or json. Default text.
	Format string `yaml:"format" env:"VIGIL_LOG_FORMAT"`
}

// HTTP configures the API and metrics listener.
type HTTP struct {
	// Addr is the listen address of the API and /metrics. Default 127.0.0.1:8080.
	Addr string `yaml:"addr" env:"VIGIL_HTTP_ADDR"`
	// MaxConnections caps the open connections; past it new ones are closed at once (a flood of
	// idle or slow connections cannot starve the node of file descriptors). Default 4096.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress caps one address's open connections (one host cannot fill
	// max_connections and keep the door controllers out). Default 256: a console behind a NAT
	// holds about six per browser.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// TrustedProxies lists the reverse proxies (addresses or CIDR prefixes) in front of vigil:
	// from them, throttling counts the caller named in X-Forwarded-For, not the proxy. Default
	// none (X-Forwarded-For is ignored).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MetricsToken, when set, is required as a bearer token on GET /metrics.
	MetricsToken Secret `yaml:"metrics_token" env:"VIGIL_METRICS_TOKEN"`
	// OpenWithoutDatabase serves the API to anyone on a node with database.enabled false (which
	// has no tokens to check). Default false: such a node refuses every API call. For a test bed
	// or a bench only.
	OpenWithoutDatabase bool `yaml:"open_without_database"`
}

// Models locates the model files.
type Models struct {
	// Dir holds the model files and is checked against the manifest. Default: $VIGIL_MODELS, else
	// ../shared/models relative to the repository root when it exists.
	Dir string `yaml:"dir" env:"VIGIL_MODELS"`
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
	ReaderQueue int `yaml:"reader_queue" env:"VIGIL_STREAMS_READER_QUEUE"`
	// Transport is the default RTSP transport: tcp, udp or auto (UDP, then TCP). Default tcp.
	Transport string `yaml:"transport" env:"VIGIL_STREAMS_TRANSPORT"`
}

// Camera is one RTSP source.
type Camera struct {
	// ID names the camera in the API, logs and metrics. Default cam001, cam002… by position.
	ID string `yaml:"id"`
	// URL is rtsp://[user:pass@]host[:port]/path. Required. Credentials print redacted.
	URL SecretURL `yaml:"url"`
	// DetectURL is the camera's sub-stream (e.g. 640×360), when it has one: the motion gate,
	// detection and tracking run on it, and the best shots, embeddings and plate reads come from
	// the main stream (url) at the same moment, decoded only when something was found. Optional;
	// without it the main stream is analysed. Credentials print redacted.
	DetectURL SecretURL `yaml:"detect_url"`
	// Transport overrides streams.transport for this camera.
	Transport string `yaml:"transport"`
	// Analyse selects recognizers: faces, plates, both or none. Default both.
	Analyse string `yaml:"analyse"`
	// FPS overrides pipeline.fps for this camera.
	FPS float64 `yaml:"fps"`
	// IdleFPS is the rate while nothing moves and no track is in progress (0: fps). A door
	// camera at fps 2.5 and idle_fps 1.25 decodes half as much until someone appears.
	IdleFPS float64 `yaml:"idle_fps"`
	// FootageDays overrides footage.retention_days for this camera.
	FootageDays int `yaml:"footage_days"`
	// Map places the camera on the site map: [x, y] in the site plan's pixels (timelines and the
	// console's map use it). Optional.
	Map *[2]float64 `yaml:"map"`
	// Masks are privacy masks: polygons of [x, y] fractions of the picture (a neighbour's
	// window, a yard) blacked out before the picture is analysed, in event snapshots and
	// footage stills, and in exported footage. The recording itself is kept intact. Set at run
	// time with PUT /v1/cameras/{id}/masks.
	Masks privacy.Masks `yaml:"masks"`
	// MaskRecording also blacks the masks out of the recording itself: each segment is
	// re-encoded with them before it is stored (ffmpeg; a segment that cannot be masked is not
	// stored). Default false: the recording is kept as sent and exports are masked.
	MaskRecording bool `yaml:"mask_recording"`
}

// Node roles (Cluster.Roles).
const (
	RoleCameras = "cameras"
	RoleAPI     = "api"
	RoleDoors   = "doors"
	RoleSearch  = "search"
)

// AllRoles lists every role a node may have.
var AllRoles = []string{RoleCameras, RoleAPI, RoleDoors, RoleSearch}

// Has reports whether the node has role (every role when none are listed).
func (c Cluster) Has(role string) bool {
	return len(c.Roles) == 0 || slices.Contains(c.Roles, role)
}

// Proxies parses TrustedProxies (Validate has checked them).
func (h HTTP) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range h.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix reads a CIDR prefix or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Database configures the event store's PostgreSQL.
type Database struct {
	// Enabled stores events. Default true.
	Enabled bool `yaml:"enabled"`
	// URL is a PostgreSQL connection string. Default empty: vigil runs its own cluster under
	// DATA/pg with the system's PostgreSQL binaries.
	URL SecretURL `yaml:"url" env:"VIGIL_DATABASE_URL"`
	// AppURL is how vigil connects once migrated: as the role vigil_app, which may only read and
	// append the audit chain. Default empty: url with its user replaced by vigil_app and no
	// password (trust or peer authentication, the managed cluster). Set url itself to a
	// vigil_app login, and run `vigil migrate` as the owner, to keep the owner's password off
	// the node.
	AppURL SecretURL `yaml:"app_url" env:"VIGIL_DATABASE_APP_URL"`
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
		HTTP:     HTTP{Addr: "127.0.0.1:8080", MaxConnections: 4096, MaxConnectionsPerAddress: 256},
		Database: Database{Enabled: true, RetentionDays: 90},
		Footage: Footage{Enabled: true, SegmentLength: Duration(10 * time.Second), RetentionDays: 30, Mode: "continuous",
			PreRoll: Duration(5 * time.Second), PostRoll: Duration(10 * time.Second)},
		Blobs:     Blobs{SpoolMaxMB: 20480},
		Audit:     Audit{CheckpointEvery: Duration(time.Hour)},
		Sensors:   Sensors{CheckEvery: Duration(5 * time.Second)},
		Strangers: Strangers{Enabled: true, Every: Duration(5 * time.Second), NightFrom: 22, NightTo: 6, NightDays: 3, DoorTries: 3},
		Live:      Live{Enabled: true, UDPAddr: ":8189", MaxViewers: 1000, MaxViewsPerPrincipal: 32, ShedOverload: true},
		Pipeline: Pipeline{Enabled: true, FPS: 2, Motion: 1.5, FaceWorkers: min(64, runtime.GOMAXPROCS(0)+1), PlateWorkers: 1, Queue: 8,
			FaceModel: "intel-0095", OpenCVThreads: 1, DoorPriority: true},
		Streams: Streams{
			ReconnectMin: Duration(time.Second),
			ReconnectMax: Duration(30 * time.Second),
			ReadTimeout:  Duration(10 * time.Second),
			ReaderQueue:  128,
			Transport:    "tcp",
		},
	}
}

// FaceSpace is the configured face model's space (Validate has checked the name).
func (p Pipeline) FaceSpace() space.Space {
	sp, err := space.SpaceNamed(p.FaceModel)
	if err != nil {
		return space.DefaultSpace
	}
	return sp
}
