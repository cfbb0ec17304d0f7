package config

import (
	"bytes"
	"net/url"
	"strings"

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

// SecretURL is a URL that may carry a password (a camera, the database, the bus): it prints with
// its host and path, the password replaced.
type SecretURL string

func (s SecretURL) String() string { return RedactURL(string(s)) }

// MarshalYAML prints the URL without its password.
func (s SecretURL) MarshalYAML() (any, error) { return s.String(), nil }

// Reveal returns the URL with its password, for the one place that connects.
func (s SecretURL) Reveal() string { return string(s) }

// RedactURL hides the password of a URL so it can be logged.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return redacted + "@" + raw[i+1:]
		}
		return raw
	}
	return u.Redacted()
}

// Redacted renders the effective configuration as YAML with secrets hidden: the Config itself is
// printed, and its secret types print themselves redacted, so a new key appears here as soon as
// it exists.
func (c Config) Redacted() string {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	_ = enc.Encode(c)
	return b.String()
}
