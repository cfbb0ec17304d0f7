package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
)

// cmdFaces is vigil faces reembed [--model M]: what a change of face model needs.
func cmdFaces(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reembed" {
		return errors.New("usage: vigil faces reembed [--model intel-0095|dlib-v1] [--config FILE] [--data DIR]")
	}
	fs, sf := toolFlags("faces reembed")
	fs.SetOutput(stderr)
	model := fs.String("model", "", "the face model to describe every enrolled resident in (default the configured pipeline.face_model)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	st, cfg, err := sf.openTool(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	sp := cfg.Pipeline.FaceSpace()
	if *model != "" {
		if sp, err = space.SpaceNamed(*model); err != nil {
			return err
		}
	}
	mdir, err := models.Dir(cfg.Models.Dir)
	if err != nil {
		return err
	}
	e, err := openEngine(ctx, st, cfg)
	if err != nil {
		return err
	}
	photos := pipeline.NewPhotos(mdir, sp)
	defer photos.Close()
	r, err := reembedTemplates(ctx, e, photos, sp, auth.Actor{Name: "vigil-cli", Role: auth.RoleAdmin}, func(i, n int, c access.Crop) {
		progress(stderr, i, n, c.Person+"/"+fmt.Sprint(c.Template))
	})
	fmt.Fprint(stderr, "\r\033[K")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d enrolment crops described again with %s (%d failed)\n", r.done, sp.Name, len(r.failed))
	for _, f := range r.failed {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	if len(r.noCrop) > 0 {
		fmt.Fprintf(stdout, "%d people were enrolled before crops were kept and must enrol again to open doors by face with %s: %v\n", len(r.noCrop), sp.Name, r.noCrop)
	}
	if len(r.failed) > 0 {
		return errSilent
	}
	return nil
}

type reembedResult struct {
	done   int
	failed []string
	noCrop []string
}

// reembedTemplates describes every kept enrolment crop again in sp and stores the templates; a
// crop that fails is reported and the others go on.
func reembedTemplates(ctx context.Context, e *access.Engine, photos *pipeline.Photos, sp space.Space, who auth.Actor,
	step func(i, n int, c access.Crop)) (reembedResult, error) {
	var r reembedResult
	todo, noCrop, err := e.CropsToReembed(ctx, sp)
	if err != nil {
		return r, err
	}
	r.noCrop = noCrop
	for i, c := range todo {
		if step != nil {
			step(i+1, len(todo), c)
		}
		emb, err := photos.Describe(ctx, c.JPEG)
		if err == nil {
			_, err = e.AddReembedded(ctx, who, c, sp, emb)
		}
		if err != nil {
			r.failed = append(r.failed, fmt.Sprintf("%s (template %d): %v", c.Person, c.Template, err))
			continue
		}
		r.done++
	}
	return r, nil
}
