package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/models"
)

func cmdCheckConfig(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: vigil check-config FILE")
	}
	cfg, err := config.Load(args[0], os.LookupEnv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# %s is valid; effective configuration (secrets redacted):\n%s", args[0], cfg.Redacted())
	return nil
}

func cmdModels(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("usage: vigil models verify [--dir DIR]")
	}
	fs := flag.NewFlagSet("models verify", flag.ContinueOnError)
	dir := fs.String("dir", os.Getenv("VIGIL_MODELS"), "models directory (env VIGIL_MODELS; default ../shared/models beside the repository)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	m, err := models.Load()
	if err != nil {
		return err
	}
	d, err := models.Dir(*dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checking %d model files in %s\n", len(m.Files), d)
	probs := m.Verify(d, func(i, n int, f models.File) {
		fmt.Fprintf(stdout, "  [%2d/%d] %-18s %s\n", i+1, n, f.Name, f.Path)
	})
	for _, p := range probs {
		fmt.Fprintf(stdout, "FAIL %s: %v\n", p.File.Name, p.Err)
	}
	if len(probs) > 0 {
		return fmt.Errorf("%d of %d model files failed verification", len(probs), len(m.Files))
	}
	fmt.Fprintf(stdout, "all %d model files verified (sha256)\n", len(m.Files))
	return nil
}
