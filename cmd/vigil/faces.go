package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/events"
)

// cmdFaces is vigil faces reembed [--model M]: what a change of face model needs.
func cmdFaces(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reembed" {
		return errors.New("usage: vigil faces reembed [--model intel-0095|dlib-v1] [--events-days N] [--config FILE] [--data DIR]")
	}
	fs, sf := toolFlags("faces reembed")
	fs.SetOutput(stderr)
	model := fs.String("model", "", "the face model to describe every enrolled resident in (default the configured pipeline.face_model)")
	days := fs.Int("events-days", -1, "also describe the stored face events of the last N days again, from their best shots (default: the database's retention, database.retention_days; 0: none)")
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
	if *days < 0 {
		*days = cfg.Database.RetentionDays
	}
	if *days > 0 {
		from := time.Now().AddDate(0, 0, -*days)
		done, lost, err := reembedEvents(ctx, st.events, st.blobs, photos, sp, from, func(n int) {
			if n%100 == 0 {
				fmt.Fprintf(stderr, "\r\033[Kface events: %d", n)
			}
		})
		fmt.Fprint(stderr, "\r\033[K")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d stored face events of the last %d days described again with %s; %d without a usable best shot keep their old vector (not searched)\n",
			done, *days, sp.Name, lost)
		fmt.Fprintln(stdout, "restart vigil serve so that its face-search index loads them")
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

// reembedEvents describes the stored face events since from again in sp, from their best shots,
// so that a face search after a change of model still finds what happened before it. An event
// whose best shot is gone, or shows no face, keeps its old vector (never compared again) and is
// counted.
func reembedEvents(ctx context.Context, st *events.Store, blobs blob.Store, photos *pipeline.Photos, sp space.Space, from time.Time,
	step func(done int)) (done, lost int, err error) {
	var afterT time.Time
	afterID := ""
	for {
		batch, err := st.FacesOfOtherModels(ctx, sp, from, afterT, afterID, 500)
		if err != nil || len(batch) == 0 {
			return done, lost, err
		}
		for _, f := range batch {
			afterT, afterID = f.Time, f.ID
			ok, err := reembedEvent(ctx, st, blobs, photos, sp, f)
			switch {
			case err != nil:
				return done, lost, fmt.Errorf("event %s: %w", f.ID, err)
			case ok:
				done++
			default:
				lost++
			}
			if step != nil {
				step(done + lost)
			}
		}
	}
}

// reembedEvent describes one stored face again from its best shot; false (and no error) when the
// best shot is gone or shows no face.
func reembedEvent(ctx context.Context, st *events.Store, blobs blob.Store, photos *pipeline.Photos, sp space.Space, f events.StoredFace) (bool, error) {
	if f.Snapshot == "" {
		return false, nil
	}
	img, err := blobs.Get(ctx, f.Snapshot)
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	emb, err := photos.Describe(ctx, img)
	if badPhoto(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, st.ReplaceEmbedding(ctx, f.ID, f.Time, sp, emb)
}

// badPhoto reports whether err is about the picture itself (pipeline.PhotoError).
func badPhoto(err error) bool {
	var p *pipeline.PhotoError
	return errors.As(err, &p)
}
