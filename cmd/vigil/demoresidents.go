package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
)

// demoBarrierID is the demo's car park barrier: a gate on a camera whose scene has cars.
const demoBarrierID = "demo-barrier"

// demoEstate is what the demo sets up for the property office and residents' story: the
// barrier (its camera, the resident's car that opens it, its controller key), and a one-time
// link that signs a resident's phone in.
type demoEstate struct {
	barrier, camera, car, owner string
	key                         []byte
	join                        string // the invitation's code ("" when none was made)
	property                    string // a property office token
}

// demoResidents gives the demo's residents units and leases (two ending within three weeks, for
// the leases calendar), a car for the first of them and a barrier that opens for it on a camera
// that sees it, a property office token and a fresh app invitation for that resident. Idempotent:
// what exists is kept.
func demoResidents(ctx context.Context, cfg config.Config, clips []*camsim.Clip, cameras int, listed string, stdout, stderr io.Writer) (demoEstate, error) {
	var est demoEstate
	cfg.FillDerived()
	st, err := openToolStore(ctx, cfg, stderr)
	if err != nil {
		return est, err
	}
	defer st.Close()
	e, err := openEngine(ctx, st, cfg)
	if err != nil {
		return est, err
	}
	who := auth.Actor{Name: "vigil demo", Role: auth.RoleAdmin}
	people, err := e.People(ctx, access.PeopleFilter{Kind: "resident", Limit: 100})
	if err != nil || len(people) == 0 {
		return est, err
	}
	now := time.Now()
	for i, p := range people {
		unit := fmt.Sprintf("d1-%02d01", i+1)
		if len(p.Units) > 0 {
			continue
		}
		ends := now.AddDate(1, 0, 0)
		if i < 2 { // moving out soon: the leases calendar has them
			ends = now.AddDate(0, 0, 10*(i+1))
		}
		if err := e.AddUnit(ctx, who, unit, fmt.Sprintf("1栋 %02d01室", i+1), "d1"); err != nil && !errors.Is(err, access.ErrExists) {
			return est, err
		}
		if err := e.AddLease(ctx, who, p.ID, unit, now.AddDate(0, -6, 0), ends); err != nil {
			return est, err
		}
	}
	est.owner = people[len(people)-1].ID // a resident with a year's lease
	// The barrier: the most-seen plate of a scene with cars, on the first camera playing it that
	// is not the demo gate's.
	for v, c := range clips {
		seen := map[string]int{}
		for _, ev := range c.Events {
			if ev.Kind == "plate" && ev.Plate != listed {
				seen[ev.Plate]++
			}
		}
		cam := v + 1 // camera i plays clips[(i-1) % len(clips)]
		if cam == 1 {
			cam += len(clips)
		}
		if len(seen) > 0 && cam <= cameras {
			est.car, est.camera = mostSeen(seen), fmt.Sprintf("cam%03d", cam)
			break
		}
	}
	if est.car != "" {
		keyFile := filepath.Join(cfg.Data, "demo-barrier.key")
		if _, ok := e.Door(demoBarrierID); !ok {
			if _, _, err := e.AddCredential(ctx, who, est.owner, access.NewCredential{Kind: access.KindPlate, Value: est.car}); err != nil && !errors.Is(err, access.ErrExists) {
				return est, err
			}
			if _, err := demoAddDoor(ctx, e, who, access.Door{ID: demoBarrierID, Name: "Car park barrier", Camera: est.camera,
				Area: "demo-carpark", Direction: "in", CameraOpens: access.CameraPlates}, keyFile); err != nil {
				return est, err
			}
		}
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return est, err
		}
		if est.key, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil {
			return est, err
		}
		est.barrier = demoBarrierID
		fmt.Fprintf(stdout, "barrier: %s on %s opens for %s's car %s\n", est.barrier, est.camera, displayName(est.owner), est.car)
	}
	ps := auth.NewPrincipals(st.pool, 0)
	if est.join, _, err = ps.Invite(ctx, est.owner, "vigil demo"); err != nil {
		return est, err
	}
	_, est.property, err = ps.Create(ctx, "demo property office", auth.RoleProperty)
	return est, err
}
