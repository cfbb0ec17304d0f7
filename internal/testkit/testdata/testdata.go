// Package testdata reads the shared test photo set's labels.csv: per file its kind (face, group,
// liveness, plate, plate_synth, nonface), identity, expected face count and expected text.
package testdata

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vigil-oss/vigil/internal/testkit/paths"
)

// Row is one labelled file.
type Row struct {
	File          string // relative to the testdata folder
	Kind          string
	Identity      string
	ExpectedFaces int
	Expected      string // free text: plate text (first word), "real"/"spoof", notes
}

// Text is the first word of Expected: a plate's text, or "real"/"spoof".
func (r Row) Text() string {
	f := strings.Fields(r.Expected)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// Dir is the shared testdata folder beside the repository, or "".
func Dir() string { return paths.Shared("testdata") }

// Load reads dir/labels.csv.
func Load(dir string) ([]Row, error) {
	f, err := os.Open(filepath.Join(dir, "labels.csv"))
	if err != nil {
		return nil, fmt.Errorf("testdata: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("testdata: labels.csv: %w", err)
	}
	var rows []Row
	for _, r := range recs[1:] {
		if len(r) < 5 {
			continue
		}
		n, _ := strconv.Atoi(r[3])
		rows = append(rows, Row{File: r[0], Kind: r[1], Identity: r[2], ExpectedFaces: n, Expected: r[4]})
	}
	return rows, nil
}
