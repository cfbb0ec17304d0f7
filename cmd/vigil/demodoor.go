package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
)

// demoDoorID is the demo's door: the gate cam001 watches, open to every resident by face.
const demoDoorID = "demo-gate"

// demoDoor sets up, once, the demo's door and its residents' face credentials in PostgreSQL: the
// door on cam001, a rule for every resident, and each demo resident (the gallery's "residents")
// with a card and their face enrolled from the photo the gallery used. It returns the door's
// controller key (kept in DATA/demo-door.key).
func demoDoor(ctx context.Context, cfg config.Config, lib *camsim.Library, stdout, stderr io.Writer) ([]byte, error) {
	cfg.FillDerived() // the secret and anchor files under DATA, as serve will use them
	keyFile := filepath.Join(cfg.Data, "demo-door.key")
	st, err := openToolStore(ctx, cfg, stderr)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	e, err := openEngine(ctx, st, cfg)
	if err != nil {
		return nil, err
	}
	if _, ok := e.Door(demoDoorID); ok {
		if b, err := os.ReadFile(keyFile); err == nil {
			if key, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
				fmt.Fprintf(stdout, "door: %s on cam001 (delete %s and the database to set it up again)\n", demoDoorID, keyFile)
				return key, nil
			}
		}
		return nil, fmt.Errorf("door %s exists but its key is not in %s", demoDoorID, keyFile)
	}
	g, err := pipeline.ReadGalleryFile(cfg.Pipeline.Gallery)
	if err != nil {
		return nil, err
	}
	mdir, err := models.Dir(cfg.Models.Dir)
	if err != nil {
		return nil, err
	}
	photos := pipeline.NewPhotos(mdir, space.DefaultSpace)
	defer photos.Close()
	who := auth.Actor{Name: "vigil demo", Role: auth.RoleAdmin}
	enrolled := 0
	for _, p := range g.People {
		if p.List != "residents" || len(lib.Faces[p.ID]) == 0 {
			continue
		}
		// The photo the gallery enrolled first, then the others, until one passes the door's
		// enrolment checks (a face, liveness, no one else's face).
		var err error
		for _, photo := range append(slices.Clone(p.Sources), lib.Faces[p.ID]...) {
			if err = demoResident(ctx, e, photos, who, p.ID, displayName(p.ID), filepath.Join(lib.Dir, photo)); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(stdout, "  door: %s has no face credential: %v\n", p.ID, err)
			continue
		}
		enrolled++
	}
	key, err := demoAddDoor(ctx, e, who, access.Door{ID: demoDoorID, Name: "Demo gate", Camera: "cam001"}, keyFile)
	if err != nil {
		return nil, err
	}
	risk, _ := e.FaceRisk(demoDoorID)
	fmt.Fprintf(stdout, "door: %s on cam001 opens by face for %d residents (policy %s: a stranger matches one of them %.3f%% of the time)\n",
		demoDoorID, enrolled, risk.Effective, 100*risk.FPIR)
	return key, nil
}

// demoAddDoor adds a demo door every resident may open and keeps its controller key in keyFile.
func demoAddDoor(ctx context.Context, e *access.Engine, who auth.Actor, d access.Door, keyFile string) ([]byte, error) {
	key, err := e.AddDoor(ctx, who, d)
	if err != nil {
		return nil, err
	}
	if err := e.AddRule(ctx, who, d.ID, "kind", "resident", ""); err != nil {
		return nil, err
	}
	return key, os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600)
}

// demoResident makes id a resident with a card and their face enrolled from photo.
func demoResident(ctx context.Context, e *access.Engine, photos *pipeline.Photos, who auth.Actor, id, name, photo string) error {
	if err := e.AddPerson(ctx, who, id, name, "resident"); err != nil && !errors.Is(err, access.ErrExists) {
		return err
	}
	if _, _, err := e.AddCredential(ctx, who, id, access.NewCredential{Kind: access.KindCard, Value: "DEMO-" + id}); err != nil && !errors.Is(err, access.ErrExists) {
		return err
	}
	img, err := os.ReadFile(photo)
	if err != nil {
		return err
	}
	t, err := photos.Enrol(ctx, img)
	if err != nil {
		return err
	}
	t.Consent = "demo: test photo"
	_, err = e.AddFaceTemplate(ctx, who, id, t)
	return err
}

// runDemoController is a demo door's controller (doorsim) on its long-poll channel: every
// unlock it receives is printed.
// what is the door's kind as printed ("door", "barrier"); how says what opened it.
func runDemoController(ctx context.Context, base, door string, key []byte, what, how string, stdout io.Writer) {
	c := doorsim.New(base, door, key)
	c.OnUnlock = func(cmd access.Command) {
		fmt.Fprintf(stdout, "%s  %s %s %s %s (event %s)\n", time.Now().Format("15:04:05"), what, cmd.Door, how, displayName(cmd.PersonID), cmd.Event)
	}
	c.Run(ctx, time.Minute)
}
