package access

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestEnrolmentCropSealedAndModelTagged: an enrolled template carries its model, and its crop is
// kept only sealed under the server's secret (the database alone never shows the face); a
// template of another model is left out of matching.
func TestEnrolmentCropSealedAndModelTagged(t *testing.T) {
	e, pool, admin, must := testEngine(t)
	ctx := context.Background()
	must(e.AddPerson(ctx, admin, "lin", "Lin Na", "resident"))
	_, _, err := e.AddCredential(ctx, admin, "lin", NewCredential{Kind: KindCard, Value: "CARD-LIN"})
	must(err)
	crop := []byte("\xff\xd8 a face crop \xff\xd9")
	id, err := e.AddFaceTemplate(ctx, admin, "lin", FaceTemplate{Embedding: SyntheticFace(space.DefaultSpace, "lin"), Quality: 0.9, Liveness: 0.9,
		Consent: "signed form (test)", Crop: crop})
	must(err)
	var model string
	var sealed []byte
	must(pool.QueryRow(ctx, `SELECT model, crop FROM face_templates WHERE id = $1`, id).Scan(&model, &sealed))
	if model != space.DefaultSpace.Name {
		t.Fatalf("template model %q", model)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte("a face crop")) {
		t.Fatalf("crop stored in the clear or not at all: %q", sealed)
	}
	got, err := e.secrets.openBytes("face crop", sealed)
	if err != nil || !bytes.Equal(got, crop) {
		t.Fatalf("sealed crop does not open: %q %v", got, err)
	}
	if _, err := e.secrets.openBytes("another purpose", sealed); err == nil {
		t.Fatal("a sealed crop opened for another purpose")
	}
	// The same person's template in dlib's space is not matched by an engine in Intel's.
	persons, _ := e.FaceTemplates()
	must(e.UseFaceSpace(ctx, space.DlibV1))
	if p, _ := e.FaceTemplates(); len(p) != 0 || len(persons) != 1 {
		t.Fatalf("templates across models: intel %v, dlib %v", persons, p)
	}
	if _, err := e.AddFaceTemplate(ctx, admin, "lin", FaceTemplate{Embedding: SyntheticFace(space.DefaultSpace, "lin"), Consent: "x"}); err == nil {
		t.Fatal("a 256-value embedding enrolled into dlib's space")
	}
}

// testEngine is an engine on a fresh database, an admin to make changes as, and a must that fails
// the test on an error.
func testEngine(t *testing.T) (*Engine, *pgxpool.Pool, auth.Actor, func(error)) {
	t.Helper()
	pool := testenv.Pool(t)
	e, err := NewEngine(context.Background(), pool, audit.New(pool, filepath.Join(t.TempDir(), "anchor")), testenv.Secret())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	return e, pool, auth.Actor{Name: "office", Role: "admin"}, must
}
