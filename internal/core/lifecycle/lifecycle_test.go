package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func TestStartInOrderStopInReverse(t *testing.T) {
	var trace []string
	g := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var loaded bool
	for _, name := range []string{"bus", "store", "pipeline", "api"} {
		g.Add(Component{Name: name,
			Start: func(context.Context) error { trace = append(trace, "start "+name); return nil },
			Stop:  func() { trace = append(trace, "stop "+name) },
		})
	}
	g.Add(Component{Name: "models", Start: func(context.Context) error { return nil },
		Ready: func() error {
			if !loaded {
				return errors.New("loading")
			}
			return nil
		}})
	if nr := g.NotReady(); len(nr) != 5 || nr[0] != "bus: starting" {
		t.Fatalf("before start: %v", nr)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if nr := g.NotReady(); !reflect.DeepEqual(nr, []string{"models: loading"}) {
		t.Fatalf("models not loaded: %v", nr)
	}
	loaded = true
	if nr := g.NotReady(); len(nr) != 0 {
		t.Fatalf("ready: %v", nr)
	}
	g.Stop()
	g.Stop() // twice is harmless
	want := []string{"start bus", "start store", "start pipeline", "start api", "stop api", "stop pipeline", "stop store", "stop bus"}
	if !reflect.DeepEqual(trace, want) {
		t.Fatalf("trace %v", trace)
	}
	if nr := g.NotReady(); len(nr) == 0 || !strings.Contains(nr[0], "stopped") {
		t.Fatalf("after stop: %v", nr)
	}
}

func TestFailedStartStopsWhatStarted(t *testing.T) {
	var trace []string
	g := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	add := func(name string, err error) {
		g.Add(Component{Name: name,
			Start: func(context.Context) error { trace = append(trace, "start "+name); return err },
			Stop:  func() { trace = append(trace, "stop "+name) },
		})
	}
	add("bus", nil)
	add("store", nil)
	add("pipeline", errors.New("no models"))
	add("api", nil)
	err := g.Start(context.Background())
	if err == nil || err.Error() != "pipeline: no models" {
		t.Fatalf("err %v", err)
	}
	want := []string{"start bus", "start store", "start pipeline", "stop store", "stop bus"}
	if !reflect.DeepEqual(trace, want) {
		t.Fatalf("trace %v", trace)
	}
}

func TestCancelledStartStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stopped []string
	g := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.Add(Component{Name: "a", Start: func(context.Context) error { cancel(); return nil }, Stop: func() { stopped = append(stopped, "a") }})
	g.Add(Component{Name: "b", Start: func(context.Context) error { t.Fatal("b started after cancel"); return nil }})
	if err := g.Start(ctx); !errors.Is(err, ErrStopped) || !reflect.DeepEqual(stopped, []string{"a"}) {
		t.Fatalf("%v %v", err, stopped)
	}
}
