package paths

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goFiles walks the repository's non-test Go files outside bench/ (benchmarks are scripts).
func goFiles(t *testing.T, fn func(rel string, src []byte)) {
	t.Helper()
	wd, _ := os.Getwd()
	root := RepoRoot(wd)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == "bench" || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fn(rel, src)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRoomsStaySmall: no Go file outside bench/ over 600 lines, no function over 120.
func TestRoomsStaySmall(t *testing.T) {
	goFiles(t, func(rel string, src []byte) {
		if n := strings.Count(string(src), "\n"); n > 600 {
			t.Errorf("%s has %d lines (at most 600: split it by concern)", rel, n)
		}
		fs := token.NewFileSet()
		f, err := parser.ParseFile(fs, rel, src, 0)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var body *ast.BlockStmt
			name := "a function literal"
			switch x := n.(type) {
			case *ast.FuncDecl:
				body, name = x.Body, x.Name.Name
			case *ast.FuncLit:
				body = x.Body
			}
			if body != nil {
				if l := fs.Position(body.End()).Line - fs.Position(n.Pos()).Line + 1; l > 120 {
					t.Errorf("%s:%d: %s has %d lines (at most 120)", rel, fs.Position(n.Pos()).Line, name, l)
				}
			}
			return true
		})
	})
}

// TestOneEventWireFormat: only internal/core/event knows the bus message's subject and wire
// form; every other package decodes it through event.Unpack.
func TestOneEventWireFormat(t *testing.T) {
	goFiles(t, func(rel string, src []byte) {
		if strings.HasPrefix(rel, filepath.Join("internal", "core", "event")+string(filepath.Separator)) {
			return
		}
		for _, s := range []string{`"vigil.events`, `embedding_le`, `envelopeV1`} {
			if strings.Contains(string(src), s) {
				t.Errorf("%s knows the event's wire form (%s): use internal/core/event", rel, s)
			}
		}
	})
}
