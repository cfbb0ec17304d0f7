package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/cameras"
)

const camerasUsage = `usage: vigil cameras add --id ID --url URL [--detect-url URL] [--analyse faces|plates|both|none] [--fps N] [--idle-fps N]
       vigil cameras list
       vigil cameras rm ID
       vigil cameras import FILE   (YAML: a list of {id, url, detect_url, analyse, fps, idle_fps, map}, or a cameras: key;
                                    CSV: a header row naming id, url and any of detect_url, analyse, fps, idle_fps, transport)`

// cmdCameras manages the camera registry: every running node applies a change within seconds.
func cmdCameras(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(camerasUsage)
	}
	fs, sf := toolFlags("cameras " + args[0])
	fs.SetOutput(stderr)
	var c cameras.Camera
	fs.StringVar(&c.ID, "id", "", "camera id (cam001…)")
	fs.StringVar(&c.URL, "url", "", "rtsp://[user:pass@]host[:port]/path")
	fs.StringVar(&c.DetectURL, "detect-url", "", "a sub-stream for analysis (optional)")
	fs.StringVar(&c.Analyse, "analyse", "both", "faces, plates, both or none")
	fs.Float64Var(&c.FPS, "fps", 0, "frames analysed per second (0: the pipeline's)")
	fs.Float64Var(&c.IdleFPS, "idle-fps", 0, "frames analysed per second while nothing moves (0: always fps)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	st, cfg, err := sf.openTool(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := cameras.New(st.pool, audit.New(st.pool, auditAnchor(cfg)))
	who := auth.Actor{Name: "vigil-cli", Role: auth.RoleAdmin}
	switch args[0] {
	case "add":
		if err := reg.Add(ctx, who, c); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "camera %s registered; every node starts it within seconds\n", c.ID)
	case "list":
		list, err := reg.List(ctx)
		if err != nil {
			return err
		}
		for _, c := range list {
			c = c.Redacted()
			fmt.Fprintf(stdout, "%-12s %-7s %s\n", c.ID, c.Analyse, c.URL)
		}
		fmt.Fprintf(stdout, "%d cameras\n", len(list))
	case "rm":
		if fs.NArg() != 1 {
			return errors.New("usage: vigil cameras rm ID")
		}
		if err := reg.Remove(ctx, who, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "camera %s removed; its footage and events stay\n", fs.Arg(0))
	case "import":
		if fs.NArg() != 1 {
			return errors.New("usage: vigil cameras import FILE")
		}
		return importCameras(ctx, reg, who, fs.Arg(0), stdout, stderr)
	default:
		return errors.New(camerasUsage)
	}
	return nil
}

// importCameras registers every camera of a YAML or CSV file: new ones added, known ones
// updated; a bad row is reported with its line and the others go on.
func importCameras(ctx context.Context, reg *cameras.Registry, who auth.Actor, path string, stdout, stderr io.Writer) error {
	list, err := readCameraFile(path)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	have, err := reg.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range have {
		known[c.ID] = true
	}
	added, updated, failed := 0, 0, 0
	for i, c := range list {
		progress(stderr, i+1, len(list), c.ID)
		update := known[c.ID]
		if update {
			err = reg.Update(ctx, who, c)
		} else {
			err = reg.Add(ctx, who, c)
		}
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "  entry %d (%s): %v\n", i+1, c.ID, err)
			failed++
		case update:
			updated++
		default:
			added++
			known[c.ID] = true
		}
	}
	fmt.Fprint(stderr, "\r\033[K")
	fmt.Fprintf(stdout, "%s: %d cameras added, %d updated, %d refused\n", path, added, updated, failed)
	if failed > 0 {
		return errSilent
	}
	return nil
}

// readCameraFile reads cameras from YAML (a list, or a cameras: key as in the configuration) or
// CSV (a header row naming the columns).
func readCameraFile(path string) ([]cameras.Camera, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return readCameraCSV(string(b))
	}
	var list []cameras.Camera
	var wrapped struct {
		Cameras []cameras.Camera `yaml:"cameras"`
	}
	if err := yaml.Unmarshal(b, &list); err != nil {
		if err2 := yaml.Unmarshal(b, &wrapped); err2 != nil {
			return nil, fmt.Errorf("%s: neither a YAML list of cameras nor a cameras: key: %v", path, err)
		}
		list = wrapped.Cameras
	}
	return list, nil
}

func readCameraCSV(text string) ([]cameras.Camera, error) {
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	if len(recs) < 2 {
		return nil, errors.New("csv: a header row (id,url,…) and at least one camera")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimSpace(strings.ToLower(h))] = i
	}
	if _, ok := col["id"]; !ok {
		return nil, errors.New("csv: the header names no id column")
	}
	if _, ok := col["url"]; !ok {
		return nil, errors.New("csv: the header names no url column")
	}
	get := func(r []string, k string) string {
		if i, ok := col[k]; ok && i < len(r) {
			return strings.TrimSpace(r[i])
		}
		return ""
	}
	var out []cameras.Camera
	for n, r := range recs[1:] {
		c := cameras.Camera{ID: get(r, "id"), URL: get(r, "url"), DetectURL: get(r, "detect_url"), Analyse: get(r, "analyse"), Transport: get(r, "transport")}
		if v := get(r, "fps"); v != "" {
			if c.FPS, err = strconv.ParseFloat(v, 64); err != nil {
				return nil, fmt.Errorf("csv line %d: fps %q", n+2, v)
			}
		}
		if v := get(r, "idle_fps"); v != "" {
			if c.IdleFPS, err = strconv.ParseFloat(v, 64); err != nil {
				return nil, fmt.Errorf("csv line %d: idle_fps %q", n+2, v)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
