package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
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
func auditAnchor(cfg config.Config) string { return cfg.Audit.Anchor }

// openEngine opens the door decision engine for a tool, with the site's credential secret.
func openEngine(ctx context.Context, st *storage, cfg config.Config) (*access.Engine, error) {
	secret, err := access.LoadSecret(cfg.Access.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("access.secret_file: %w", err)
	}
	e, err := access.NewEngine(ctx, st.pool, audit.New(st.pool, auditAnchor(cfg)), secret)
	if err != nil {
		return nil, err
	}
	return e, e.UseFaceSpace(ctx, cfg.Pipeline.FaceSpace())
}

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
		return errors.New("usage: vigil token create --role ROLE --name NAME [--person ID] | vigil token list | vigil token revoke --name NAME")
	}
	fs, sf := toolFlags("token " + args[0])
	fs.SetOutput(stderr)
	name := fs.String("name", "", "who the token is for (a person or a machine)")
	role := fs.String("role", "", "one of "+strings.Join(auth.Roles, ", "))
	person := fs.String("person", "", "the person a resident's token acts for (role resident)")
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
		p, token, err := ps.CreateFor(ctx, *name, *role, *person)
		if err != nil {
			return err
		}
		if _, err := trail.Append(ctx, audit.Entry{Actor: "vigil-cli", Role: auth.RoleAdmin, Action: "token.create",
			Detail: []byte(fmt.Sprintf(`{"name":%q,"role":%q,"id":%d,"person":%q}`, p.Name, p.Role, p.ID, p.Person))}); err != nil {
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

// cmdAudit is vigil audit verify|checkpoint|keygen.
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: vigil audit verify [--pub FILE]... | vigil audit checkpoint [--key FILE] | vigil audit keygen --out DIR"
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs, sf := toolFlags("audit " + args[0])
	fs.SetOutput(stderr)
	var pubs stringList
	fs.Var(&pubs, "pub", "a trusted checkpoint public key (repeatable; default audit.checkpoint_pub)")
	key := fs.String("key", "", "the checkpoint signing key (default audit.checkpoint_key)")
	out := fs.String("out", "", "where keygen writes the key pair")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "keygen" {
		if *out == "" {
			return errors.New("audit keygen needs --out DIR (keep the private key off the database's machine)")
		}
		k, p, err := audit.GenerateKey(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "private key %s (set audit.checkpoint_key)\npublic key  %s (set audit.checkpoint_pub; verify trusts it)\n", k, p)
		return nil
	}
	if args[0] != "verify" && args[0] != "checkpoint" {
		return errors.New(usage)
	}
	st, cfg, err := sf.openTool(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if args[0] == "checkpoint" {
		if *key == "" {
			*key = cfg.Audit.CheckpointKey
		}
		return auditCheckpoint(ctx, st, *key, stdout)
	}
	if len(pubs) == 0 {
		pubs = cfg.Audit.CheckpointPub
	}
	return auditVerify(ctx, st, cfg, pubs, stdout, stderr)
}

// auditCheckpoint signs the chain's head with the key at path.
func auditCheckpoint(ctx context.Context, st *storage, path string, stdout io.Writer) error {
	if path == "" {
		return errors.New("audit checkpoint needs --key FILE or audit.checkpoint_key (vigil audit keygen makes one)")
	}
	priv, err := audit.LoadKey(path)
	if err != nil {
		return err
	}
	c, err := audit.SignHead(ctx, st.pool, priv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checkpoint: row %d, hash %x, signed by key %s\n", c.Seq, c.Hash, c.KeyID)
	return nil
}

func auditVerify(ctx context.Context, st *storage, cfg config.Config, pubs []string, stdout, stderr io.Writer) error {
	o := audit.VerifyOptions{Anchor: auditAnchor(cfg), Progress: func(n int64) { fmt.Fprintf(stderr, "\rverified %d rows", n) }}
	for _, p := range pubs {
		k, err := audit.LoadPublicKey(p)
		if err != nil {
			return err
		}
		o.Keys = append(o.Keys, k)
	}
	rep, err := audit.Verify(ctx, st.pool, o)
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
	for _, a := range rep.Adopted {
		fmt.Fprintln(stdout, "NOTE: the anchor file was re-made at", a, "- rows before it are checked against signed checkpoints only")
	}
	fmt.Fprintf(stdout, "audit chain intact: %d rows", rep.Rows)
	if len(o.Keys) > 0 {
		fmt.Fprintf(stdout, ", checked against %d trusted checkpoint key(s)", len(o.Keys))
	}
	fmt.Fprintln(stdout)
	return nil
}

// cmdDoors is vigil doors add.
func cmdDoors(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New("usage: vigil doors add --id ID --camera CAMERA [--area AREA --direction in|out --anti-passback --fail-safe --camera-opens faces|plates|both --plate-policy exact|confusable]")
	}
	fs, sf := toolFlags("doors add")
	fs.SetOutput(stderr)
	var d access.Door
	fs.StringVar(&d.ID, "id", "", "door id")
	fs.StringVar(&d.Name, "name", "", "door name")
	fs.StringVar(&d.Camera, "camera", "", "the camera watching the door (auto-unlock by face)")
	fs.StringVar(&d.Area, "area", "", "anti-passback area the door leads into (in) or out of (out); for a gate, its car park")
	fs.StringVar(&d.CameraOpens, "camera-opens", "faces", "what the door's camera opens it for: faces, plates (a car park's barrier) or both")
	fs.StringVar(&d.PlatePolicy, "plate-policy", "exact", "a gate's plate matching: exact, or confusable (one confusable character at high confidence, never the province)")
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
	e, err := openEngine(ctx, st, cfg)
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
