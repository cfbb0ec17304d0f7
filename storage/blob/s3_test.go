package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

func TestS3AgainstVersityGW(t *testing.T) {
	srv := testenv.StartS3(t)
	ctx := context.Background()
	s, err := NewS3(ctx, S3Config{Endpoint: srv.Endpoint, Bucket: "vigil", AccessKey: srv.AccessKey, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "snapshots/2026/11/29/e1.jpg", []byte("\xff\xd8jpeg"), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, "snapshots/2026/11/29/e1.jpg")
	if err != nil || string(b) != "\xff\xd8jpeg" {
		t.Fatalf("get %q %v", b, err)
	}
	if _, err := s.Get(ctx, "snapshots/none.jpg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing object: %v", err)
	}
	if err := s.Delete(ctx, "snapshots/2026/11/29/e1.jpg"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewS3(ctx, S3Config{Endpoint: srv.Endpoint, Bucket: "vigil", AccessKey: srv.AccessKey, SecretKey: "wrong"}); err == nil {
		t.Fatal("a bad signature was accepted")
	}
}

// TestSpoolDuringOutage: the object store goes away; writes land in the spool and stay readable;
// when it returns, the spool drains into it and empties.
func TestSpoolDuringOutage(t *testing.T) {
	srv := testenv.StartS3(t)
	ctx := context.Background()
	s3, err := NewS3(ctx, S3Config{Endpoint: srv.Endpoint, Bucket: "vigil", AccessKey: srv.AccessKey, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	sp := &Spooled{Primary: s3, Spool: FS{Root: t.TempDir()}}
	if err := sp.Put(ctx, "a/1", []byte("one"), ""); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	for i := 2; i <= 4; i++ {
		if err := sp.Put(tctx, "a/"+string(rune('0'+i)), []byte("during outage"), ""); err != nil {
			t.Fatalf("put during outage: %v", err)
		}
	}
	cancel()
	if n, _ := sp.Counts(); n != 3 {
		t.Fatalf("%d spooled", n)
	}
	if b, err := sp.Get(ctx, "a/3"); err != nil || string(b) != "during outage" {
		t.Fatalf("spooled read: %q %v", b, err)
	}
	srv.Start()
	sp.Drain(ctx) // uploads and clears the hold-off
	if err := sp.Put(ctx, "a/5", []byte("after"), ""); err != nil {
		t.Fatal(err)
	}
	if n, _ := sp.Counts(); n != 3 {
		t.Fatalf("a write after recovery was spooled (%d spooled)", n)
	}
	if _, up := sp.Counts(); up != 3 {
		t.Fatalf("%d uploaded", up)
	}
	left, _ := filepath.Glob(filepath.Join(sp.Spool.Root, "a", "*"))
	if len(left) != 0 {
		t.Fatalf("spool not empty: %v", left)
	}
	if b, err := s3.Get(ctx, "a/4"); err != nil || string(b) != "during outage" {
		t.Fatalf("after drain: %q %v", b, err)
	}
}

// TestSpoolCapDropsOldestFootageNeverSnapshots: with the object store down and the spool at its
// cap, the oldest footage goes first (counted); snapshots are kept even past the cap.
func TestSpoolCapDropsOldestFootageNeverSnapshots(t *testing.T) {
	srv := testenv.StartS3(t)
	ctx := context.Background()
	s3, err := NewS3(ctx, S3Config{Endpoint: srv.Endpoint, Bucket: "vigil", AccessKey: srv.AccessKey, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	sp := &Spooled{Primary: s3, Spool: FS{Root: t.TempDir()}, MaxBytes: 3000, Timeout: 500 * time.Millisecond}
	seg := make([]byte, 1000)
	for i := 1; i <= 5; i++ {
		if err := sp.Put(ctx, fmt.Sprintf("footage/cam001/%d.mp4", i), seg, "video/mp4"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // distinct modification times
	}
	if d := sp.DroppedFootage(); d != 2 {
		t.Fatalf("%d footage segments dropped, want 2", d)
	}
	for i, want := range []bool{false, false, true, true, true} {
		_, err := sp.Spool.Get(ctx, fmt.Sprintf("footage/cam001/%d.mp4", i+1))
		if (err == nil) != want {
			t.Errorf("segment %d kept=%v, want %v", i+1, err == nil, want)
		}
	}
	// Snapshots are events: kept whatever the cap.
	for i := 0; i < 3; i++ {
		if err := sp.Put(ctx, fmt.Sprintf("snapshots/e%d.jpg", i), seg, "image/jpeg"); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Spool.Get(ctx, fmt.Sprintf("snapshots/e%d.jpg", i)); err != nil {
			t.Fatalf("snapshot %d not kept: %v", i, err)
		}
	}
}

// TestUploadCutHalfWay: the way to the object store is cut while a large object is uploading
// (after 8 of its 64 MB); the write lands in the spool and reaches the store whole once the
// store can be reached again.
func TestUploadCutHalfWay(t *testing.T) {
	srv := testenv.StartS3(t)
	path := testenv.NewProxy(t, srv.Endpoint)
	ctx := context.Background()
	s3, err := NewS3(ctx, S3Config{Endpoint: path.Addr(), Bucket: "vigil", AccessKey: srv.AccessKey, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	sp := &Spooled{Primary: s3, Spool: FS{Root: t.TempDir()}, Timeout: 5 * time.Second}
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i * 31)
	}
	path.CutAfter(8 << 20)
	if err := sp.Put(ctx, "footage/cam001/big.mp4", big, "video/mp4"); err != nil {
		t.Fatal(err)
	}
	if n, _ := sp.Counts(); n != 1 {
		t.Fatalf("%d objects spooled after the upload was cut, want 1", n)
	}
	path.Restore()
	sp.Drain(ctx)
	got, err := s3.Get(ctx, "footage/cam001/big.mp4")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("after drain: %d bytes, %v", len(got), err)
	}
}

func TestPresignedURLReadsWithoutCredentials(t *testing.T) {
	srv := testenv.StartS3(t)
	ctx := context.Background()
	s3, err := NewS3(ctx, S3Config{Endpoint: srv.Endpoint, Bucket: "vigil", AccessKey: srv.AccessKey, SecretKey: srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	s3.Put(ctx, "snapshots/p.jpg", []byte("\xff\xd8presigned"), "image/jpeg")
	u, err := s3.Presign(ctx, "snapshots/p.jpg", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "\xff\xd8presigned" {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, b)
	}
	if _, err := s3.Presign(ctx, "snapshots/none.jpg", time.Minute); !errors.Is(err, ErrNotFound) {
		t.Fatalf("presign of a missing object: %v", err)
	}
}
