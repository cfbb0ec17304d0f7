package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

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
	c.FillDerived()
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

// EnvVar is one environment variable vigil reads: its name and the YAML key it sets.
type EnvVar struct {
	Name, Key string
}

// EnvVars lists every environment variable the configuration reads, from the struct tags.
func EnvVars() []EnvVar {
	var out []EnvVar
	walkEnv(reflect.ValueOf(&Config{}).Elem(), "", func(name, key string, _ reflect.Value) {
		out = append(out, EnvVar{Name: name, Key: key})
	})
	return out
}

// walkEnv calls fn for every field of v (a struct, recursively) with an env tag.
func walkEnv(v reflect.Value, prefix string, fn func(name, key string, f reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if prefix != "" {
			key = prefix + "." + key
		}
		if name := sf.Tag.Get("env"); name != "" {
			fn(name, key, v.Field(i))
			continue
		}
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(Duration(0)) {
			walkEnv(v.Field(i), key, fn)
		}
	}
}

// applyEnv sets every field whose env variable is set (and not empty).
func (c *Config) applyEnv(env func(string) (string, bool)) error {
	var errs []error
	walkEnv(reflect.ValueOf(c).Elem(), "", func(name, key string, f reflect.Value) {
		v, ok := env(name)
		if !ok || v == "" {
			return
		}
		if err := setFromEnv(f, v); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %q %v", name, key, v, err))
		}
	})
	return errors.Join(errs...)
}

func setFromEnv(f reflect.Value, v string) error {
	if cams, ok := f.Addr().Interface().(*[]Camera); ok { // comma-separated URLs, appended
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				*cams = append(*cams, Camera{URL: SecretURL(u)})
			}
		}
		return nil
	}
	if list, ok := f.Addr().Interface().(*[]string); ok { // comma-separated, replacing
		*list = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*list = append(*list, s)
			}
		}
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(v)
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("is not true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		if f.Type() == reflect.TypeOf(Duration(0)) {
			d, err := time.ParseDuration(v)
			if err != nil {
				return errors.New("is not a duration (examples: 500ms, 2s, 1m)")
			}
			f.SetInt(int64(d))
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("is not a number")
		}
		f.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("is not a number")
		}
		f.SetFloat(n)
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", f.Type())
	}
	return nil
}

// AddCameras appends cameras given by URL (the --camera flag) and names them.
func (c *Config) AddCameras(urls []string) {
	for _, u := range urls {
		c.Cameras = append(c.Cameras, Camera{URL: SecretURL(u)})
	}
	c.fillCameraIDs()
}

// SetData moves the data directory (the --data flag), and with it the defaults derived from it
// that were not set explicitly.
func (c *Config) SetData(dir string) {
	if c.Pipeline.Gallery == filepath.Join(c.Data, "gallery.json") {
		c.Pipeline.Gallery = filepath.Join(dir, "gallery.json")
	}
	if c.Access.SecretFile == filepath.Join(c.Data, "access.secret") {
		c.Access.SecretFile = filepath.Join(dir, "access.secret")
	}
	if c.Audit.Anchor == filepath.Join(c.Data, "audit.anchor") {
		c.Audit.Anchor = filepath.Join(dir, "audit.anchor")
	}
	c.Data = dir
}

// FillDerived sets the defaults that depend on other fields (the data directory's files) where
// they are not set. Load does it; a Config built in code calls it once its fields are set.
func (c *Config) FillDerived() {
	if c.Data == "" {
		c.Data = "data"
	}
	if c.Blobs.S3.Endpoint != "" && c.Blobs.S3.Bucket == "" {
		c.Blobs.S3.Bucket = "vigil"
	}
	if c.Pipeline.Gallery == "" {
		c.Pipeline.Gallery = filepath.Join(c.Data, "gallery.json")
	}
	if c.Access.SecretFile == "" {
		c.Access.SecretFile = filepath.Join(c.Data, "access.secret")
	}
	if c.Audit.Anchor == "" {
		c.Audit.Anchor = filepath.Join(c.Data, "audit.anchor")
	}
	if len(c.Audit.CheckpointPub) == 0 && c.Audit.CheckpointKey != "" {
		c.Audit.CheckpointPub = []string{strings.TrimSuffix(c.Audit.CheckpointKey, ".key") + ".pub"}
	}
	if c.Access.MQTT.Topic == "" {
		c.Access.MQTT.Topic = "vigil/doors"
	}
	if c.Cluster.Node == "" {
		c.Cluster.Node = hostNodeID()
	}
	if c.Cluster.Capacity == 0 {
		c.Cluster.Capacity = 1
	}
}

// hostNodeID is the host name as a node id: dots and other characters become '-'.
func hostNodeID() string {
	h, _ := os.Hostname()
	id := strings.Trim(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '-'
	}, h), "-_")
	if id == "" {
		return "vigil"
	}
	return id[:min(len(id), 64)]
}

func (c *Config) fillCameraIDs() {
	for i := range c.Cameras {
		if c.Cameras[i].ID == "" {
			c.Cameras[i].ID = fmt.Sprintf("cam%03d", i+1)
		}
	}
}
