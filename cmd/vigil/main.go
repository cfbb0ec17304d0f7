// Command vigil runs every role of the vigil system: camera ingest, recognition, the event store,
// recording, access control, live view and the API (serve), and the tools beside it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vigil-oss/vigil/internal/core/config"
)

var version = "dev"

const usage = `vigil — video analytics and access control for dense urban communities

Usage:
  vigil serve [--config FILE] [--camera URL]... [--http ADDR] [--data DIR]
                                                                  pull cameras, recognise, store events, serve the API
  vigil demo [--cameras N] [--http ADDR]                          simulated cameras + serve, on embedded defaults
  vigil analyze [--json] FILE...                                  faces and plates in image files (one JSON line per file)
  vigil enroll --name NAME FILE... | --dir DIR [--list L]         add people to the gallery (quality-gated)
  vigil enroll --reembed [--model M]                              describe the gallery file's people again with another face model
  vigil faces reembed [--model M]                                 describe every enrolled resident again with another face model,
                                                                  from the enrolment crops kept sealed for it
  vigil migrate [--config FILE] [--data DIR]                      apply the event store's migrations
  vigil token create --role ROLE --name NAME                      print a new API bearer token (roles: admin,
                                                                  investigator, operator, patrol, resident)
  vigil token list | vigil token revoke --name NAME
  vigil cameras add --id ID --url URL [--analyse faces|plates|both|none] | list | rm ID | import FILE
                                                                  the camera registry: every node applies a change within seconds
  vigil doors add --id ID --camera CAMERA [--area A --direction in|out --anti-passback --camera-opens faces|plates|both --plate-policy exact|confusable]
                                                                  register a door; prints its controller key
  vigil audit verify                                              check the audit chain; fails if any row was
                                                                  altered or deleted
  vigil check-config FILE                                         validate a config file; print it with secrets redacted
  vigil models verify [--dir DIR]                                 check every model file against the manifest
  vigil version

`

// usageText is usage with the environment variables the configuration reads.
func usageText() string {
	var b strings.Builder
	b.WriteString(usage)
	b.WriteString("\nEnvironment (each sets a config key; VIGIL_CAMERAS is comma-separated RTSP URLs, appended):\n  VIGIL_CONFIG (the config file)\n")
	for _, v := range config.EnvVars() {
		fmt.Fprintf(&b, "  %-28s %s\n", v.Name, v.Key)
	}
	b.WriteString("See README.md for the configuration reference.\n")
	return b.String()
}

func main() {
	config.TuneGC()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "analyze":
		err = cmdAnalyze(args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout, stderr)
	case "enroll":
		err = cmdEnroll(args[1:], stdout, stderr)
	case "token":
		err = cmdToken(ctx, args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr)
	case "doors":
		err = cmdDoors(ctx, args[1:], stdout, stderr)
	case "faces":
		err = cmdFaces(ctx, args[1:], stdout, stderr)
	case "cameras":
		err = cmdCameras(ctx, args[1:], stdout, stderr)
	case "check-config":
		err = cmdCheckConfig(args[1:], stdout)
	case "models":
		err = cmdModels(args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "vigil", version)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText())
	default:
		fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", args[0], usageText())
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errSilent) {
			return 1
		}
		fmt.Fprintf(stderr, "vigil %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// newLogger builds the process logger from config values.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
