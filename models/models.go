// Package models owns vigil's model manifest: which files the recognizers load, their sha256,
// licence and source, where the models directory is, and checking a directory against the manifest.
package models

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vigil-oss/vigil/internal/testkit/paths"
)

//go:embed manifest.json
var manifestJSON []byte

// File is one model artifact.
type File struct {
	Name    string `json:"name"`
	Path    string `json:"path"` // relative to the models directory
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	Licence string `json:"licence"`
	Source  string `json:"source"`
}

// Manifest lists every model file vigil may load.
type Manifest struct {
	Files []File `json:"files"`
}

// Load returns the manifest compiled into the binary.
func Load() (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(manifestJSON, &m); err != nil {
		return m, fmt.Errorf("models: embedded manifest: %w", err)
	}
	return m, nil
}

// ErrNoDir means no models directory could be found.
var ErrNoDir = errors.New("no models directory: set VIGIL_MODELS (or models.dir in the config) to a folder " +
	"holding the files listed in models/manifest.json; the project's shared/models folder has them, " +
	"with licences and sources in its MANIFEST.md")

// Dir finds the models directory: configured (VIGIL_MODELS or models.dir) when set, else
// ../shared/models next to the repository root found above the working directory or the executable.
func Dir(configured string) (string, error) {
	if configured != "" {
		if st, err := os.Stat(configured); err != nil || !st.IsDir() {
			return "", fmt.Errorf("models directory %q: not a directory", configured)
		}
		return configured, nil
	}
	if d := paths.Shared("models"); d != "" {
		return d, nil
	}
	return "", ErrNoDir
}

// Problem is one file that failed verification.
type Problem struct {
	File File
	Err  error
}

// Verify checks every manifest file in dir: present, right size, right sha256. progress, when
// not nil, is called before each file.
func (m Manifest) Verify(dir string, progress func(i, n int, f File)) []Problem {
	var probs []Problem
	for i, f := range m.Files {
		if progress != nil {
			progress(i, len(m.Files), f)
		}
		if err := verifyFile(filepath.Join(dir, f.Path), f); err != nil {
			probs = append(probs, Problem{File: f, Err: err})
		}
	}
	return probs
}

func verifyFile(path string, f File) error {
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("missing: %s", path)
		}
		return err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if f.Bytes > 0 && n != f.Bytes {
		return fmt.Errorf("%s: %d bytes, manifest says %d", path, n, f.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%s: sha256 %s, manifest says %s", path, got, f.SHA256)
	}
	return nil
}

// Path returns the absolute path of the named model in dir.
func (m Manifest) Path(dir, name string) (string, error) {
	for _, f := range m.Files {
		if f.Name == name {
			return filepath.Join(dir, f.Path), nil
		}
	}
	return "", fmt.Errorf("models: %q is not in the manifest", name)
}
