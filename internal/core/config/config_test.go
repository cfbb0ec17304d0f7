package config

import (
	"strings"
	"testing"
	"time"
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
			"log.level", "http.addr", "reconnect_min", "scheme \"http\"", "already used", "carrier-pigeon",
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
