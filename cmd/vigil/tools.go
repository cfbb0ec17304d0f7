package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/config"
)

// openTool loads the configuration the flags name and opens its database for a short-lived command.
func (f *serveFlags) openTool(ctx context.Context, stderr io.Writer) (*storage, config.Config, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, cfg, err
	}
	st, err := openToolStore(ctx, cfg, stderr)
	return st, cfg, err
}

// auditAnchor is where the audit chain's newest seq and hash are kept outside the database.
func auditAnchor(cfg config.Config) string { return filepath.Join(cfg.Data, "audit.anchor") }

// toolFlags is a flag set with serve's --config and --data (to find the database) plus a tool's own.
func toolFlags(name string) (*flag.FlagSet, *serveFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var sf serveFlags
	sf.registerStore(fs)
	return fs, &sf
}

// cmdToken is vigil token create|list|revoke.
func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: vigil token create --role ROLE --name NAME | vigil token list | vigil token revoke --name NAME")
	}
	fs, sf := toolFlags("token " + args[0])
	fs.SetOutput(stderr)
	name := fs.String("name", "", "who the token is for (a person or a machine)")
	role := fs.String("role", "", "one of admin, investigator, operator, patrol, resident")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	st, cfg, err := sf.openTool(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	ps := auth.NewPrincipals(st.pool, 0)
	trail := audit.New(st.pool, auditAnchor(cfg))
	switch args[0] {
	case "create":
		if *name == "" || *role == "" {
			return errors.New("token create needs --name and --role")
		}
		p, token, err := ps.Create(ctx, *name, *role)
		if err != nil {
			return err
		}
		if _, err := trail.Append(ctx, audit.Entry{Actor: "vigil-cli", Role: auth.RoleAdmin, Action: "token.create",
			Detail: []byte(fmt.Sprintf(`{"name":%q,"role":%q,"id":%d}`, p.Name, p.Role, p.ID))}); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "token for %s (%s); it is shown once, store it now:\n", p.Name, p.Role)
		fmt.Fprintln(stdout, token)
	case "list":
		list, err := ps.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED")
		for _, p := range list {
			revoked := "-"
			if p.RevokedAt != nil {
				revoked = p.RevokedAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Role, p.CreatedAt.Local().Format(time.DateTime), revoked)
		}
		return tw.Flush()
	case "revoke":
		if *name == "" {
			return errors.New("token revoke needs --name")
		}
		n, err := ps.Revoke(ctx, *name)
		if err != nil {
			return err
		}
		if _, err := trail.Append(ctx, audit.Entry{Actor: "vigil-cli", Role: auth.RoleAdmin, Action: "token.revoke",
			Detail: []byte(fmt.Sprintf(`{"name":%q,"tokens":%d}`, *name, n))}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d token(s) of %s\n", n, *name)
	default:
		return fmt.Errorf("token: unknown command %q (create, list, revoke)", args[0])
	}
	return nil
}

// cmdAudit is vigil audit verify.
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: vigil audit verify [--config FILE] [--data DIR]")
	}
	fs, sf := toolFlags("audit verify")
	fs.SetOutput(stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	st, cfg, err := sf.openTool(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := audit.Verify(ctx, st.pool, auditAnchor(cfg), func(n int64) {
		fmt.Fprintf(stderr, "\rverified %d rows", n)
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	if !rep.OK() {
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, "TAMPERED:", p)
		}
		return fmt.Errorf("audit chain broken: %d problem(s) in %d rows", len(rep.Problems), rep.Rows)
	}
	fmt.Fprintf(stdout, "audit chain intact: %d rows\n", rep.Rows)
	return nil
}

// cmdDoors is vigil doors add.
func cmdDoors(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New("usage: vigil doors add --id ID --camera CAMERA [--area AREA --direction in|out --anti-passback --fail-safe]")
	}
	fs, sf := toolFlags("doors add")
	fs.SetOutput(stderr)
	var d access.Door
	fs.StringVar(&d.ID, "id", "", "door id")
	fs.StringVar(&d.Name, "name", "", "door name")
	fs.StringVar(&d.Camera, "camera", "", "the camera watching the door (auto-unlock by face)")
	fs.StringVar(&d.Area, "area", "", "anti-passback area the door leads into (in) or out of (out)")
	fs.StringVar(&d.Direction, "direction", "in", "in or out")
	fs.BoolVar(&d.AntiPassback, "anti-passback", false, "refuse a second entry without an exit")
	failSafe := fs.Bool("fail-safe", false, "controllers open on their cached credentials' say-so when vigil is unreachable (default: fail-secure)")
	fs.IntVar(&d.PulseMS, "pulse-ms", 3000, "how long the lock opens")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if d.ID == "" {
		return errors.New("doors add needs --id")
	}
	if *failSafe {
		d.FailMode = "safe"
	}
	st, cfg, err := sf.openTool(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	e, err := access.NewEngine(ctx, st.pool, audit.New(st.pool, auditAnchor(cfg)))
	if err != nil {
		return err
	}
	key, err := e.AddDoor(ctx, auth.Actor{Name: "vigil-cli", Role: auth.RoleAdmin}, d)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "door %s registered; its controller key (shown once, configure it in the controller):\n", d.ID)
	fmt.Fprintln(stdout, hex.EncodeToString(key))
	return nil
}
