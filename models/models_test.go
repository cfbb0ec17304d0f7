package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifySharedModels(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) < 8 {
		t.Fatalf("manifest has %d files", len(m.Files))
	}
	dir, err := Dir(os.Getenv("VIGIL_MODELS"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("missing dependency under CI: models: %v", err)
		}
		t.Skipf("no models directory here: %v", err)
	}
	calls := 0
	if probs := m.Verify(dir, func(int, int, File) { calls++ }); len(probs) != 0 {
		t.Fatalf("verification failed: %v", probs)
	}
	if calls != len(m.Files) {
		t.Fatalf("progress called %d times for %d files", calls, len(m.Files))
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	m := Manifest{Files: []File{
		{Name: "a", Path: "a.bin", Bytes: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}, // "hello"
		{Name: "b", Path: "sub/b.bin", Bytes: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
		{Name: "c", Path: "c.bin", Bytes: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
	}}
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.bin"), []byte("hellO"), 0o644)
	probs := m.Verify(dir, nil)
	if len(probs) != 2 {
		t.Fatalf("want 2 problems, got %v", probs)
	}
	if !strings.Contains(probs[0].Err.Error(), "missing") || !strings.Contains(probs[1].Err.Error(), "sha256") {
		t.Fatalf("unclear problems: %v", probs)
	}
	if _, err := Dir(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("a missing configured dir was accepted")
	}
}
