package events

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/core/bus"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/storage/schema"
)

// TestSIGKILLMidBatch runs a writer with its embedded bus in a child process, publishing and
// storing events, and kills it with SIGKILL mid-stream. A second child over the same bus folder
// finishes the job. Every event the bus acknowledged is stored exactly once.
func TestSIGKILLMidBatch(t *testing.T) {
	dbURL := testenv.PostgresDB(t)
	busDir := t.TempDir()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := schema.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	child := func(mode string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0]) // TestMain runs crashChild
		cmd.Env = append(os.Environ(), "VIGIL_CRASH_CHILD="+mode, "VIGIL_CRASH_DB="+dbURL, "VIGIL_CRASH_BUS="+busDir)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(out)
	}
	// Child 1 publishes 20,000 events and stores them; it is killed when about half are stored.
	c1, _ := child("publish")
	deadline := time.Now().Add(60 * time.Second)
	var n int
	for n < 5000 {
		if time.Now().After(deadline) {
			c1.Process.Kill()
			t.Fatalf("child stored only %d events", n)
		}
		time.Sleep(20 * time.Millisecond)
		pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n)
	}
	_ = c1.Process.Signal(syscall.SIGKILL)
	_ = c1.Wait()
	pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n)
	t.Logf("killed with %d events stored", n)

	// Child 2 reopens the bus and drains it; it reports how many messages the stream holds.
	c2, out := child("drain")
	var inStream int
	for out.Scan() {
		if v, ok := strings.CutPrefix(out.Text(), "STREAM "); ok {
			inStream, _ = strconv.Atoi(v)
			break
		}
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n)
		if n >= inStream || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Nothing arrives late either (a second redelivery would be a duplicate attempt).
	time.Sleep(4 * time.Second)
	_ = c2.Process.Signal(syscall.SIGTERM)
	_ = c2.Wait()
	var distinct int
	pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT id) FROM events`).Scan(&n, &distinct)
	t.Logf("stream holds %d acknowledged events; %d stored, %d distinct", inStream, n, distinct)
	if inStream < 5000 || n != inStream || distinct != n {
		t.Fatalf("acknowledged %d, stored %d (%d distinct)", inStream, n, distinct)
	}
}

// TestMain runs the child process of TestSIGKILLMidBatch when asked to, else the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("VIGIL_CRASH_CHILD"); mode != "" {
		if err := crashChild(mode); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild publishes and stores events (mode publish) or drains the bus (mode drain) until
// it is killed.
func crashChild(mode string) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgxpool.New(ctx, os.Getenv("VIGIL_CRASH_DB"))
	if err != nil {
		return err
	}
	b, err := bus.Open(ctx, bus.Config{StoreDir: os.Getenv("VIGIL_CRASH_BUS")}, log)
	if err != nil {
		return err
	}
	// A short AckWait: the batch the killed child had in flight comes back to the second child
	// after it.
	w := NewWriter(New(pool), b.JetStream(), nil, WriterOptions{Stream: bus.Stream, Batch: 500, AckWait: 3 * time.Second}, nil, log)
	go w.Run(ctx)
	if mode == "drain" {
		st, _ := b.JetStream().Stream(ctx, bus.Stream)
		info, _ := st.Info(ctx)
		fmt.Printf("STREAM %d\n", info.State.Msgs)
		select {} // until killed
	}
	base := time.Now()
	for i := 0; i < 20000; i++ {
		r := rec(base.Add(time.Duration(i)*time.Millisecond), i, "cam001", "plate")
		data, _ := json.Marshal(r)
		if err := b.Publish(ctx, event.SubjectPrefix+".plate.cam001", r.ID, data); err != nil {
			return err
		}
	}
	select {}
}
