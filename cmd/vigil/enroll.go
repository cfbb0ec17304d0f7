package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/models"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/recognizers"
	"github.com/vigil-oss/vigil/recognizers/dnn"
	"github.com/vigil-oss/vigil/recognizers/ort"
)

// cmdEnroll adds people to the gallery from photos: --name NAME FILE... for one person, or
// --dir DIR with one folder per person.
func cmdEnroll(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	name := fs.String("name", "", "the person's name (with FILE arguments)")
	dir := fs.String("dir", "", "a folder with one sub-folder of photos per person, named after them")
	list := fs.String("list", "residents", "the list: residents, or a watchlist's name")
	gallery := fs.String("gallery", filepath.Join(envOr("VIGIL_DATA", "data"), "gallery.json"), "gallery file")
	modelsDir := fs.String("models", os.Getenv("VIGIL_MODELS"), "models directory")
	person := fs.String("person", "", "enrol FILE arguments as this access-control person's face credential (in PostgreSQL) instead of the gallery file")
	consent := fs.String("consent", "", "with --person: how the person gave consent (required), e.g. \"signed form 2026-11-29\"")
	model := fs.String("model", envOr("VIGIL_FACE_MODEL", space.DefaultSpace.Name), "face model of the gallery file: intel-0095 or dlib-v1")
	reembed := fs.Bool("reembed", false, "describe every person of the gallery file again with --model, from the photos they were enrolled from")
	var sf serveFlags
	sf.registerStore(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *person != "" {
		return enrolResident(*person, *consent, *modelsDir, &sf, fs.Args(), stdout, stderr)
	}
	sp, err := space.SpaceNamed(*model)
	if err != nil {
		return err
	}
	if *reembed {
		return reembedGallery(*gallery, *modelsDir, sp, stdout, stderr)
	}
	jobs, err := enrolJobs(*name, *dir, fs.Args())
	if err != nil {
		return err
	}
	faces, g, err := galleryTools(*modelsDir, sp)
	if err != nil {
		return err
	}
	defer faces.Close()
	if err := g.Load(*gallery); err != nil {
		return err
	}
	total := 0
	for _, j := range jobs {
		total += len(j.files)
	}
	done, failed, added := 0, 0, 0
	for _, j := range jobs {
		p := pipeline.Person{ID: pipeline.PersonID(j.name), Name: j.name, List: *list}
		for _, f := range j.files {
			done++
			progress(stderr, done, total, f)
			img, err := recognizers.LoadImage(f)
			if err == nil {
				var e recognizers.Embedding
				e, _, err = pipeline.EnrolFace(faces, img, pipeline.EnrolGate{})
				img.Close()
				if err == nil {
					p.Embeddings = append(p.Embeddings, e)
					p.Sources = append(p.Sources, f)
					continue
				}
			}
			failed++
			fmt.Fprintf(stderr, "\r\033[K%s: %v\n", f, err)
		}
		if len(p.Embeddings) > 0 {
			g.Add(p)
			added++
		}
	}
	fmt.Fprint(stderr, "\r\033[K")
	if err := g.Save(*gallery); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled %d people from %d of %d photos into %s (%d people in the gallery)\n",
		added, total-failed, total, *gallery, len(g.People()))
	if failed > 0 {
		return fmt.Errorf("%d of %d photos were refused", failed, total)
	}
	return nil
}

type enrolJob struct {
	name  string
	files []string
}

func enrolJobs(name, dir string, files []string) ([]enrolJob, error) {
	switch {
	case dir != "" && (name != "" || len(files) > 0):
		return nil, errors.New("give either --dir DIR or --name NAME FILE..., not both")
	case dir != "":
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		var jobs []enrolJob
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			photos, _ := filepath.Glob(filepath.Join(dir, e.Name(), "*"))
			sort.Strings(photos)
			if len(photos) > 0 {
				jobs = append(jobs, enrolJob{name: e.Name(), files: photos})
			}
		}
		if len(jobs) == 0 {
			return nil, fmt.Errorf("%s has no sub-folders with photos", dir)
		}
		return jobs, nil
	case name == "" || len(files) == 0:
		return nil, errors.New("usage: vigil enroll --name NAME FILE... | vigil enroll --dir DIR")
	default:
		return []enrolJob{{name: name, files: files}}, nil
	}
}

// progress draws a one-line bar on a terminal-like writer.
func progress(w io.Writer, done, total int, item string) {
	const width = 30
	n := done * width / max(total, 1)
	fmt.Fprintf(w, "\r\033[K[%s%s] %d/%d %s", strings.Repeat("#", n), strings.Repeat("-", width-n), done, total, filepath.Base(filepath.Dir(item))+"/"+filepath.Base(item))
}

// enrolResident enrols photos as a person's face credential in PostgreSQL, through the same gate
// as POST /v1/people/{id}/faces: one face, size, pose, liveness, a card or PIN first, no duplicate
// of another person, consent recorded, audited.
func enrolResident(person, consent, modelsDir string, sf *serveFlags, files []string, stdout, stderr io.Writer) error {
	if consent == "" {
		return errors.New("enroll --person needs --consent: say how the person gave it")
	}
	if len(files) == 0 {
		return errors.New("enroll --person needs photo files")
	}
	mdir, err := models.Dir(modelsDir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, cfg, err := sf.openTool(ctx, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	e, err := openEngine(ctx, st, cfg)
	if err != nil {
		return err
	}
	fe := pipeline.NewPhotos(mdir, e.FaceSpace())
	defer fe.Close()
	added := 0
	for i, f := range files {
		progress(stderr, i+1, len(files), f)
		img, err := os.ReadFile(f)
		if err == nil {
			var t access.FaceTemplate
			if t, err = fe.Enrol(ctx, img); err == nil {
				t.Consent = consent
				_, err = e.AddFaceTemplate(ctx, auth.Actor{Name: "vigil-cli", Role: auth.RoleAdmin}, person, t)
			}
		}
		if err != nil {
			fmt.Fprintf(stdout, "  %s: not enrolled: %v\n", f, err)
			continue
		}
		added++
	}
	fmt.Fprintf(stdout, "%s: %d of %d photos enrolled as face credentials\n", person, added, len(files))
	if added == 0 {
		return errSilent
	}
	return nil
}

// reembedGallery describes every person of a gallery file again in sp, from the photos each was
// enrolled from (Sources): what a change of face model needs. A person none of whose photos can
// still be read is reported and left out.
func reembedGallery(path, modelsDir string, sp space.Space, stdout, stderr io.Writer) error {
	old, err := pipeline.ReadGalleryFile(path)
	if err != nil {
		return err
	}
	faces, g, err := galleryTools(modelsDir, sp)
	if err != nil {
		return err
	}
	defer faces.Close()
	for _, pl := range old.Plates {
		g.AddPlate(pl)
	}
	kept, lost := 0, 0
	for i, p := range old.People {
		progress(stderr, i+1, len(old.People), p.ID+"/")
		np := pipeline.Person{ID: p.ID, Name: p.Name, List: p.List}
		for _, f := range p.Sources {
			img, err := recognizers.LoadImage(f)
			if err != nil {
				fmt.Fprintf(stderr, "\r\033[K%s: %s: %v\n", p.ID, f, err)
				continue
			}
			e, _, err := pipeline.EnrolFace(faces, img, pipeline.EnrolGate{})
			img.Close()
			if err != nil {
				fmt.Fprintf(stderr, "\r\033[K%s: %s: %v\n", p.ID, f, err)
				continue
			}
			np.Embeddings = append(np.Embeddings, e)
			np.Sources = append(np.Sources, f)
		}
		if len(np.Embeddings) == 0 {
			lost++
			fmt.Fprintf(stdout, "  %s: no enrolment photo could be described again; enrol them anew\n", p.ID)
			continue
		}
		g.Add(np)
		kept++
	}
	fmt.Fprint(stderr, "\r\033[K")
	if err := g.Save(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d people described again with %s (was %s); %d left out\n", path, kept, sp.Name, old.Model, lost)
	if lost > 0 {
		return errSilent
	}
	return nil
}

// cliRuntime puts the face networks of a command that reads no configuration file (enrol,
// analyse) on ONNX Runtime where it is installed, as serve's pipeline.onnxruntime default does;
// $VIGIL_ONNXRUNTIME names the library or says off.
func cliRuntime() error {
	_, _, err := dnn.Configure(os.Getenv(ort.Env))
	return err
}

// galleryTools loads the face models of sp and makes an empty gallery of that space.
func galleryTools(modelsDir string, sp space.Space) (*dnn.Faces, *pipeline.Gallery, error) {
	mdir, err := models.Dir(modelsDir)
	if err != nil {
		return nil, nil, err
	}
	if err := cliRuntime(); err != nil {
		return nil, nil, err
	}
	faces, err := dnn.NewFacesIn(mdir, sp, dnn.DetectorOptions{})
	if err != nil {
		return nil, nil, err
	}
	return faces, pipeline.NewGallery(pipeline.MatchOptions{Space: sp}), nil
}
