package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/paths"
)

func noEnv(string) (string, bool) { return "", false }

func TestLoadGood(t *testing.T) {
	c, err := Load("testdata/good.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" || c.HTTP.Addr != "127.0.0.1:9090" || c.Streams.ReaderQueue != 64 {
		t.Fatalf("fields not read: %+v", c)
	}
	if c.Streams.ReconnectMin.D() != 500*time.Millisecond {
		t.Fatalf("reconnect_min = %v", c.Streams.ReconnectMin.D())
	}
	if len(c.Cameras) != 2 || c.Cameras[0].ID != "gate-north" || c.Cameras[1].ID != "cam002" {
		t.Fatalf("cameras = %+v", c.Cameras)
	}
	if c.Streams.ReadTimeout.D() != 10*time.Second {
		t.Fatalf("default read_timeout lost: %v", c.Streams.ReadTimeout.D())
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c, err := Load("testdata/good.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	for _, secret := range []string{"hunter2", "s3cret", "m0squitto"} {
		if strings.Contains(out, secret) {
			t.Fatalf("secret %q printed:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "127.0.0.1:8554/cam/001") || !strings.Contains(out, "[redacted]") {
		t.Fatalf("redacted view lost the camera or the marker:\n%s", out)
	}
	if got := Secret("x").String(); got != "[redacted]" {
		t.Fatalf("Secret.String() = %q", got)
	}
}

func TestLoadBad(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"testdata/bad_unknown_key.yaml", []string{"levle"}},
		{"testdata/bad_duration.yaml", []string{"not a duration"}},
		{"testdata/bad_syntax.yaml", []string{"bad_syntax.yaml"}},
		{"testdata/bad_values.yaml", []string{
			"log.level", "http.addr", "reconnect_min", "scheme \"http\"", "already used", "carrier-pigeon", "detect_url",
			"bus.url", "blobs.s3.endpoint", "blobs.s3.bucket", "blobs.s3: access_key", "blobs.spool_max_mb",
			"live.udp_addr", "live.max_viewers", "live.public_ips[0]", "live.ice_servers[0]",
			"access.mqtt.url", "access.mqtt.topic", "pipeline.door_min_face", "pipeline.cpu_slots",
		}},
		{"testdata/missing.yaml", []string{"no such file"}},
	}
	for _, tc := range cases {
		_, err := Load(tc.file, noEnv)
		if err == nil {
			t.Fatalf("%s: loaded without error", tc.file)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.file, err, w)
			}
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"VIGIL_HTTP_ADDR":    "127.0.0.1:7000",
		"VIGIL_LOG_LEVEL":    "warn",
		"VIGIL_CAMERAS":      "rtsp://127.0.0.1:8554/cam/001, rtsp://127.0.0.1:8554/cam/002",
		"VIGIL_DATABASE_URL": "postgres://u:pw@h/db",
	}
	c, err := Load("testdata/good.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:7000" || c.Log.Level != "warn" {
		t.Fatalf("env not applied: %+v", c)
	}
	if len(c.Cameras) != 4 || c.Cameras[3].ID != "cam004" {
		t.Fatalf("env cameras not appended: %+v", c.Cameras)
	}
	if c.Database.URL.Reveal() != "postgres://u:pw@h/db" {
		t.Fatal("database url not applied")
	}
	env["VIGIL_STREAMS_READER_QUEUE"] = "lots"
	if _, err := Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil {
		t.Fatal("bad number accepted")
	}
}

// TestEveryEnvVarSetsItsField: each variable in the struct tags sets the field it names (the
// mapping is read from the struct, so none can point nowhere).
func TestEveryEnvVarSetsItsField(t *testing.T) {
	vars := EnvVars()
	if len(vars) < 15 {
		t.Fatalf("only %d env vars: %v", len(vars), vars)
	}
	values := map[string]string{
		"VIGIL_DATA": "/srv/vigil", "VIGIL_LOG_LEVEL": "warn", "VIGIL_LOG_FORMAT": "json", "VIGIL_HTTP_ADDR": "127.0.0.1:7000",
		"VIGIL_MODELS": "/srv/models", "VIGIL_STREAMS_READER_QUEUE": "99", "VIGIL_STREAMS_TRANSPORT": "udp",
		"VIGIL_CAMERAS": "rtsp://127.0.0.1/a,rtsp://127.0.0.1/b", "VIGIL_DATABASE_URL": "postgres://u:pw@h/db", "VIGIL_DATABASE_APP_URL": "postgres://vigil_app:pw@h/db",
		"VIGIL_BUS_URL": "nats://127.0.0.1:4222", "VIGIL_S3_ENDPOINT": "127.0.0.1:7070", "VIGIL_S3_ACCESS_KEY": "ak",
		"VIGIL_S3_SECRET_KEY": "sk", "VIGIL_MQTT_URL": "tcp://127.0.0.1:1883", "VIGIL_MQTT_PASSWORD": "pw", "VIGIL_AUDIT_CHECKPOINT_KEY": "/etc/vigil/audit-checkpoint.key", "VIGIL_ACCESS_SECRET_FILE": "/etc/vigil/access.secret", "VIGIL_METRICS_TOKEN": "m3trics", "VIGIL_FACE_MODEL": "dlib-v1", "VIGIL_ONNXRUNTIME": "off", "VIGIL_NODE": "node-2", "VIGIL_ADVERTISE": "http://10.0.0.2:8080", "VIGIL_BUS_REPLICAS": "1", "VIGIL_ROLES": "api,search",
	}
	base := Default()
	base.FillDerived()
	for _, v := range vars {
		val, ok := values[v.Name]
		if !ok {
			t.Errorf("%s (%s) has no case here: add one", v.Name, v.Key)
			continue
		}
		c, err := Load("", func(k string) (string, bool) {
			if k == v.Name {
				return val, true
			}
			if strings.HasPrefix(v.Name, "VIGIL_S3_") && strings.HasPrefix(k, "VIGIL_S3_") { // an endpoint needs its keys
				return values[k], true
			}
			return "", false
		})
		if err != nil {
			t.Errorf("%s=%s: %v", v.Name, val, err)
			continue
		}
		if got, was := fieldAt(&c, v.Key), fieldAt(&base, v.Key); reflect.DeepEqual(got.Interface(), was.Interface()) {
			t.Errorf("%s=%s did not change %s", v.Name, val, v.Key)
		}
	}
}

// TestRedactedPrintsEverySection: the redacted print is the whole Config.
func TestRedactedPrintsEverySection(t *testing.T) {
	c, err := Load("testdata/good.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	ty := reflect.TypeOf(c)
	for i := range ty.NumField() {
		key := strings.Split(ty.Field(i).Tag.Get("yaml"), ",")[0]
		if !strings.Contains(out, "\n"+key+":") && !strings.HasPrefix(out, key+":") {
			t.Errorf("section %s missing from the redacted print", key)
		}
	}
	if !strings.Contains(out, "postgres://vigil:xxxxx@127.0.0.1:5432/vigil") {
		t.Errorf("database url not printed redacted:\n%s", out)
	}
}

// fieldAt finds a field by its YAML key path ("blobs.s3.endpoint").
func fieldAt(c *Config, key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		for i := range v.NumField() {
			if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == part {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}

// TestReadmeListsEveryEnvVar: the README's configuration reference names every variable.
func TestReadmeListsEveryEnvVar(t *testing.T) {
	wd, _ := os.Getwd()
	b, err := os.ReadFile(filepath.Join(paths.RepoRoot(wd), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range EnvVars() {
		if !strings.Contains(string(b), "`"+v.Name+"`") {
			t.Errorf("README.md does not list %s (%s)", v.Name, v.Key)
		}
	}
}
