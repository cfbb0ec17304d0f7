// Package paths finds the project's shared folders (models, test data) next to the repository:
// ../shared/NAME from the folder holding go.mod, searched above the working directory and the
// executable.
package paths

import (
	"os"
	"path/filepath"
)

// Shared returns ../shared/name beside the repository root, or "" when there is none.
func Shared(name string) string {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		if root := RepoRoot(s); root != "" {
			d := filepath.Join(root, "..", "shared", name)
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				return filepath.Clean(d)
			}
		}
	}
	return ""
}

// RepoRoot walks up from dir to the folder holding go.mod; "" when there is none.
func RepoRoot(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
