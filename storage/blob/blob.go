// Package blob stores immutable objects (snapshots, footage segments) by key: on the filesystem
// by default, or in any S3 service. Keys are slash-separated paths of letters, digits, '-', '_'
// and '.'.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Store is where objects live.
type Store interface {
	Put(ctx context.Context, key string, data []byte, contentType string) error
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
}

// ErrNotFound means no object has that key.
var ErrNotFound = errors.New("blob: not found")

// ErrBadKey means a key could escape its store or is not a plain path.
var ErrBadKey = errors.New("blob: invalid key")

// CheckKey validates a key.
func CheckKey(key string) error {
	if key == "" || len(key) > 512 || strings.HasPrefix(key, "/") || strings.Contains(key, "..") {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-_.", r)) {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
	}
	return nil
}

// FS keeps objects as files under a root folder.
type FS struct {
	Root string
}

// Put writes atomically: a temporary file renamed into place, so a reader never sees half an
// object and a crash leaves none.
func (f FS) Put(_ context.Context, key string, data []byte, _ string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	p := filepath.Join(f.Root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// Get reads an object.
func (f FS) Get(_ context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(f.Root, filepath.FromSlash(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

// Delete removes an object; a missing one is not an error.
func (f FS) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(f.Root, filepath.FromSlash(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
