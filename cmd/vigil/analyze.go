package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
)

// analysis is one line of `vigil analyze --json`.
type analysis struct {
	File   string           `json:"file"`
	Faces  []dnn.FaceResult `json:"faces"`
	Plates []dnn.Plate      `json:"plates"`
	Error  string           `json:"error,omitempty"`
}

// cmdAnalyze runs the recognizers on image files: every file gets a result or its own error,
// and one bad file never stops the rest.
func cmdAnalyze(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object per line per file")
	modelsDir := fs.String("models", os.Getenv("VIGIL_MODELS"), "models directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("no files given (usage: vigil analyze [--json] FILE ...)")
	}
	dir, err := models.Dir(*modelsDir)
	if err != nil {
		return err
	}
	if err := cliRuntime(); err != nil {
		return err
	}
	faces, err := dnn.NewFaces(dir, dnn.DetectorOptions{})
	if err != nil {
		return err
	}
	defer faces.Close()
	plates, err := dnn.NewPlates(dir)
	if err != nil {
		return err
	}
	defer plates.Close()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	failed := 0
	for _, file := range fs.Args() {
		a := analyzeFile(faces, plates, file)
		if a.Error != "" {
			failed++
		}
		if *asJSON {
			if err := enc.Encode(a); err != nil {
				return err
			}
			continue
		}
		printAnalysis(stdout, a)
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "vigil analyze: %d of %d files failed\n", failed, fs.NArg())
		return errSilent
	}
	return nil
}

// errSilent exits 1 without another message: the command already said what went wrong.
var errSilent = errors.New("")

func analyzeFile(faces *dnn.Faces, plates *dnn.Plates, file string) analysis {
	a := analysis{File: file, Faces: []dnn.FaceResult{}, Plates: []dnn.Plate{}}
	img, err := recognizers.LoadImage(file)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	defer img.Close()
	var errs []error
	if fr, err := faces.Analyze(img); err != nil {
		errs = append(errs, err)
	} else {
		a.Faces = fr
	}
	if pr, err := plates.Read(img); err != nil {
		errs = append(errs, err)
	} else {
		a.Plates = pr
	}
	if err := errors.Join(errs...); err != nil {
		a.Error = err.Error()
	}
	return a
}

func printAnalysis(w io.Writer, a analysis) {
	if a.Error != "" {
		fmt.Fprintf(w, "%s: error: %s\n", a.File, a.Error)
	}
	fmt.Fprintf(w, "%s: %d faces, %d plates\n", a.File, len(a.Faces), len(a.Plates))
	for i, f := range a.Faces {
		fmt.Fprintf(w, "  face %d at %.0f,%.0f %.0fx%.0f score %.2f quality %.2f liveness %.2f yaw %.0f°\n",
			i+1, f.Box.X, f.Box.Y, f.Box.W, f.Box.H, f.Score, f.Quality.Score, f.Liveness, f.Quality.Yaw)
	}
	for i, p := range a.Plates {
		fmt.Fprintf(w, "  plate %d %s (%s) score %.2f valid %v\n", i+1, p.Text, p.Color, p.Score, p.Valid)
	}
}
