// Package ortenv loads ONNX Runtime's library for the tests that compare or use it.
package ortenv

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/recognizers/ort"
)

// Load loads the library ($VIGIL_ONNXRUNTIME, else the verified one in the user's cache); its
// absence fails the test under CI (scripts/setup.sh fetches it) and skips it elsewhere. It
// does not make ONNX Runtime dnn's Auto choice: the other tests keep their runtime.
func Load(t testing.TB) {
	t.Helper()
	p := ort.Default()
	if p == "" {
		testenv.Missing(t, "ONNX Runtime (scripts/fetch-onnxruntime.sh, or $%s)", ort.Env)
	}
	if err := ort.Load(p); err != nil {
		t.Fatal(err)
	}
}
