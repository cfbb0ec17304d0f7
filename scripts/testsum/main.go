// Command testsum reads `go test -json` output. As a filter (no arguments) it prints what a
// person wants to see while the suite runs: each package's result, and the output of every test
// that failed. With -summary FILE it counts the tests of one or more runs appended to FILE and
// prints one line, "N passed, N failed, N skipped", and exits 1 when any failed (or any skipped
// under CI, where a skip means a dependency the suite was meant to check is missing).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

func main() {
	summary := flag.String("summary", "", "count the tests in this go test -json file")
	flag.Parse()
	if *summary != "" {
		os.Exit(summarise(*summary))
	}
	filter(os.Stdin, os.Stdout)
}

// filter streams package results and failed tests' output.
func filter(r io.Reader, w io.Writer) {
	out := map[string][]string{} // package/test → its output so far
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(w, sc.Text()) // not JSON: a build error, pass it on
			continue
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "output":
			if e.Test == "" { // the package's own lines: ok/FAIL, a panic outside a test
				if !strings.HasPrefix(e.Output, "=== ") && e.Output != "PASS\n" {
					fmt.Fprint(w, e.Output)
				}
				continue
			}
			out[key] = append(out[key], e.Output)
		case "fail":
			for _, l := range out[key] {
				fmt.Fprint(w, l)
			}
			delete(out, key)
		case "pass", "skip":
			if e.Action == "skip" && e.Test != "" {
				fmt.Fprintf(w, "SKIP %s %s\n", e.Package, e.Test)
			}
			delete(out, key)
		}
	}
}

// summarise counts test results (subtests included; fuzz targets count once).
func summarise(path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		return 2
	}
	defer f.Close()
	var passed, failed, skipped int
	var failures, skips []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			if e.Action == "fail" && e.Test == "" && e.Package != "" {
				failures = append(failures, e.Package+" (package)")
			}
			continue
		}
		switch e.Action {
		case "pass":
			passed++
		case "fail":
			failed++
			failures = append(failures, e.Package+" "+e.Test)
		case "skip":
			skipped++
			skips = append(skips, e.Package+" "+e.Test)
		}
	}
	for _, s := range slices.Compact(slices.Sorted(slices.Values(failures))) {
		fmt.Println("failed:", s)
	}
	for _, s := range skips {
		fmt.Println("skipped:", s)
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || len(failures) > 0 || (skipped > 0 && os.Getenv("CI") != "") {
		return 1
	}
	return 0
}
