package measure

import (
	"context"
	"os"
	"os/exec"
	"strings"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// Bed is a bench's vigil: its own database on the machine's PostgreSQL, its own data folder,
// and the vigil binary's command line against both.
type Bed struct {
	URL, Data, Vigil string
	Env              []string // the environment vigil runs with (VIGIL_DATABASE_URL set)
	drop             func()
}

// NewBed makes the database and the folder (name goes in the folder's name).
func NewBed(ctx context.Context, vigil, name string) (*Bed, error) {
	url, drop, err := testenv.CreateDB(ctx)
	if err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp("", "vigil-bench-"+name+"-")
	if err != nil {
		drop()
		return nil, err
	}
	return &Bed{URL: url, Data: data, Vigil: vigil, Env: append(os.Environ(), "VIGIL_DATABASE_URL="+url), drop: drop}, nil
}

// CLI runs a vigil tool (token, doors…) on the bed and returns what it printed.
func (b *Bed) CLI(args ...string) (string, error) {
	c := exec.Command(b.Vigil, append(args, "--data", b.Data)...)
	c.Env = b.Env
	out, err := c.Output()
	return strings.TrimSpace(string(out)), err
}

// Close drops the database and removes the folder.
func (b *Bed) Close() {
	b.drop()
	os.RemoveAll(b.Data)
}
