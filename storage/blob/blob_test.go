package blob

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFS(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := FS{Root: root}
	if err := s.Put(ctx, "snapshots/2026/11/29/abc.jpg", []byte("jpeg"), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, "snapshots/2026/11/29/abc.jpg")
	if err != nil || string(b) != "jpeg" {
		t.Fatalf("get: %q %v", b, err)
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../b", "snap shots/x", "a\x00b"} {
		if err := s.Put(ctx, bad, nil, ""); !errors.Is(err, ErrBadKey) {
			t.Errorf("key %q: %v", bad, err)
		}
	}
	if _, err := s.Get(ctx, "snapshots/none.jpg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.Delete(ctx, "snapshots/2026/11/29/abc.jpg"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "snapshots/2026/11/29/abc.jpg"); err != nil {
		t.Fatal("deleting twice failed")
	}
	left, _ := filepath.Glob(filepath.Join(root, "snapshots/2026/11/29/.put-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	os.RemoveAll(root)
}
