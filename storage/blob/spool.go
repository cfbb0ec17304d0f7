package blob

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Spooled puts objects in Primary (S3) and, when it fails, in a local Spool folder instead, so
// an object store outage never stops or loses what is written. Run uploads the spool once the
// primary answers again; Get looks in both.
type Spooled struct {
	Primary Store
	Spool   FS
	Log     *slog.Logger
	// Timeout bounds one attempt on the primary. Default 3 s.
	Timeout time.Duration
	// MaxBytes caps the spool (0: no cap). When footage would pass it, the oldest spooled
	// footage is dropped first; snapshots (events) are never dropped and may pass the cap.
	MaxBytes int64

	spooled, uploaded, droppedFootage atomic.Uint64
	downAt                            atomic.Int64 // unix nanoseconds of the last primary failure
	mu                                sync.Mutex   // serialises spool writes and evictions
}

// footagePrefix marks objects the spool may drop to stay under its cap.
const footagePrefix = "footage/"

// holdOff is how long after a failure writes go straight to the spool, so an outage costs each
// write nothing; Run keeps probing the primary meanwhile.
const holdOff = 5 * time.Second

// Put writes to the primary, or to the spool when the primary fails or failed moments ago.
func (s *Spooled) Put(ctx context.Context, key string, data []byte, contentType string) error {
	var err error
	if since := time.Since(time.Unix(0, s.downAt.Load())); since > holdOff {
		timeout := s.Timeout
		if timeout <= 0 {
			timeout = 3 * time.Second
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err = s.Primary.Put(pctx, key, data, contentType)
		cancel()
		if err == nil || errors.Is(err, ErrBadKey) {
			return err
		}
		s.downAt.Store(time.Now().UnixNano())
		if s.Log != nil {
			s.Log.Warn("object store unavailable; spooling locally", "err", err, "spool", s.Spool.Root)
		}
	} else {
		err = errors.New("blob: primary store down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.MaxBytes > 0 && strings.HasPrefix(key, footagePrefix) {
		if !s.makeRoom(int64(len(data))) {
			s.droppedFootage.Add(1)
			if s.Log != nil {
				s.Log.Warn("spool full: footage segment dropped", "key", key, "cap_bytes", s.MaxBytes)
			}
			return nil // dropped by policy, counted; recording goes on
		}
	}
	if serr := s.Spool.Put(ctx, key, data, contentType); serr != nil {
		return errors.Join(err, serr)
	}
	s.spooled.Add(1)
	return nil
}

// makeRoom deletes the oldest spooled footage until n more bytes fit under MaxBytes.
func (s *Spooled) makeRoom(n int64) bool {
	type file struct {
		path string
		size int64
		mod  time.Time
	}
	var total int64
	var footage []file
	_ = filepath.WalkDir(s.Spool.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		total += info.Size()
		rel, _ := filepath.Rel(s.Spool.Root, p)
		if strings.HasPrefix(filepath.ToSlash(rel), footagePrefix) {
			footage = append(footage, file{p, info.Size(), info.ModTime()})
		}
		return nil
	})
	sort.Slice(footage, func(i, j int) bool { return footage[i].mod.Before(footage[j].mod) })
	for total+n > s.MaxBytes && len(footage) > 0 {
		if os.Remove(footage[0].path) == nil {
			total -= footage[0].size
			s.droppedFootage.Add(1)
			if s.Log != nil {
				s.Log.Warn("spool full: oldest footage dropped", "file", footage[0].path)
			}
		}
		footage = footage[1:]
	}
	return total+n <= s.MaxBytes
}

// Get reads from the spool first (newest, not yet uploaded), then the primary.
func (s *Spooled) Get(ctx context.Context, key string) ([]byte, error) {
	if b, err := s.Spool.Get(ctx, key); err == nil {
		return b, nil
	}
	return s.Primary.Get(ctx, key)
}

// Delete removes the object from both.
func (s *Spooled) Delete(ctx context.Context, key string) error {
	_ = s.Spool.Delete(ctx, key)
	return s.Primary.Delete(ctx, key)
}

// Counts returns how many objects went to the spool and how many were uploaded from it.
func (s *Spooled) Counts() (spooled, uploaded uint64) { return s.spooled.Load(), s.uploaded.Load() }

// DroppedFootage counts footage segments the spool's cap dropped.
func (s *Spooled) DroppedFootage() uint64 { return s.droppedFootage.Load() }

// Run uploads spooled objects every interval until ctx ends.
func (s *Spooled) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Drain uploads what the spool holds; it stops at the first failure (the primary is still down).
func (s *Spooled) Drain(ctx context.Context) {
	_ = filepath.WalkDir(s.Spool.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".put-") {
			return nil
		}
		rel, _ := filepath.Rel(s.Spool.Root, p)
		key := filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if err := s.Primary.Put(ctx, key, data, ""); err != nil {
			s.downAt.Store(time.Now().UnixNano())
			return fs.SkipAll
		}
		s.downAt.Store(0)
		_ = os.Remove(p)
		s.uploaded.Add(1)
		if s.Log != nil {
			s.Log.Debug("uploaded spooled object", "key", key)
		}
		return nil
	})
}

// Presign returns a presigned URL when the primary can make one and holds the object (not while
// it waits in the spool).
func (s *Spooled) Presign(ctx context.Context, key string, expiry time.Duration) (string, error) {
	p, ok := s.Primary.(interface {
		Presign(context.Context, string, time.Duration) (string, error)
	})
	if !ok {
		return "", ErrNotFound
	}
	if _, err := s.Spool.Get(ctx, key); err == nil {
		return "", ErrNotFound // still local: served by the API
	}
	return p.Presign(ctx, key, expiry)
}
