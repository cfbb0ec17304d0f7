package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
	"github.com/vigil-oss/vigil/models"
)

// Missing reports a real dependency the test cannot run without (models, the test photos,
// PostgreSQL, ffmpeg, Chromium, an S3 server, an MQTT broker). Under CI (CI set) that is a
// failure: a suite that skips what it was meant to check proves nothing. Elsewhere the test
// skips, saying what is missing and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("missing dependency under CI: %s", msg)
	}
	t.Skipf("missing dependency: %s (scripts/setup.sh installs what the tests need)", msg)
}

// Models returns the verified models folder ($VIGIL_MODELS or ../shared/models).
func Models(t testing.TB) string {
	t.Helper()
	dir, err := models.Dir(os.Getenv("VIGIL_MODELS"))
	if err != nil {
		Missing(t, "models: %v", err)
	}
	return dir
}

// Testdata returns the shared test photo set (../shared/testdata).
func Testdata(t testing.TB) string {
	t.Helper()
	dir := testdata.Dir()
	if dir == "" {
		Missing(t, "the shared test photos (../shared/testdata beside the repository)")
	}
	return dir
}

// Command returns the path of a program the test runs (ffmpeg, ffprobe, chromium…).
func Command(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed", name)
	}
	return p
}
