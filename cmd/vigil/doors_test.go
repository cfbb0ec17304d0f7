package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
	"github.com/vigil-oss/vigil/pipeline"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/events"
)

// TestDoorFaceDecisions enrols a resident's face through the admin API and asks the signed unlock
// API with photos: his face opens his door; a stranger, photos of photos and a picture without a
// face do not; a second enrolment of his face under another name is flagged; after erasure his
// face opens nothing.
func TestDoorFaceDecisions(t *testing.T) {
	td := testenv.Testdata(t)
	testenv.Models(t)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	code, out, errs := runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", data)
	if code != 0 {
		t.Fatalf("token: %s %s", out, errs)
	}
	admin := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	code, out, errs = runCmd("doors", "add", "--id", "b1-gate", "--camera", "cam001", "--data", data)
	if code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("doors add: %d %q %s", code, out, errs)
	}
	key, _ := hex.DecodeString(strings.TrimSpace(out))

	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	n := startNode(t, cfg)
	base := n.URL

	call := func(method, path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		r, err := admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.StatusCode, b, want)
		}
	}
	call("POST", "/v1/units", `{"id":"b1-0101"}`, 201)
	for _, p := range []string{"obama", "impostor"} {
		call("POST", "/v1/people", `{"id":"`+p+`","name":"`+p+`","kind":"resident"}`, 201)
		call("POST", "/v1/people/"+p+"/leases", fmt.Sprintf(`{"unit":"b1-0101","starts":%q,"ends":%q}`,
			time.Now().AddDate(0, -1, 0).Format(time.RFC3339), time.Now().AddDate(1, 0, 0).Format(time.RFC3339)), 201)
	}
	call("POST", "/v1/doors/b1-gate/rules", `{"who_kind":"unit","who":"b1-0101"}`, 201)
	photo := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(td, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	enrol := func(person string, img []byte, consent string, want int) {
		t.Helper()
		body, ct := multipartBody(map[string]string{"consent": consent}, img)
		r, err := admin.Post(base+"/v1/people/"+person+"/faces", ct, body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != want {
			t.Fatalf("enrol %s: %d %s, want %d", person, r.StatusCode, b, want)
		}
	}
	enrol("obama", photo("faces/obama/2.jpg"), "signed form", 400) // no card yet: a face is never the only credential
	call("POST", "/v1/people/obama/credentials", `{"kind":"card","value":"B1-CARD-0001"}`, 201)
	call("POST", "/v1/people/impostor/credentials", `{"kind":"card","value":"B1-CARD-0002"}`, 201)
	enrol("obama", photo("faces/obama/2.jpg"), "", 400) // no consent
	enrol("obama", photo("groups/obama_and_biden.jpg"), "signed form", 422)
	enrol("obama", photo("faces/obama/2.jpg"), "signed form 2026-11-29", 201)
	enrol("impostor", photo("faces/obama/3.jpg"), "signed form", 409) // the same face under another name

	nonce := 0
	ask := func(img []byte) access.Decision {
		t.Helper()
		nonce++
		body, _ := json.Marshal(map[string]any{"credential": access.Presented{Kind: "face", Value: base64.StdEncoding.EncodeToString(img)}})
		path := "/v1/doors/b1-gate/decisions"
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		n := fmt.Sprintf("face-test-%08d", nonce)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		req.Header.Set(access.HeaderTimestamp, ts)
		req.Header.Set(access.HeaderNonce, n)
		req.Header.Set(access.HeaderSignature, access.Sign(key, "POST", path, "", ts, n, body))
		req.Header.Set("X-Vigil-Credential-Kind", "face")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var d access.Decision
		json.NewDecoder(r.Body).Decode(&d)
		if r.StatusCode != 200 {
			t.Fatalf("decision: %d", r.StatusCode)
		}
		return d
	}
	cases := []struct {
		name, file string
		grant      bool
		reason     string
	}{
		{"the resident", "faces/obama/1.jpg", true, access.Granted},
		{"a stranger", "faces/biden/1.jpg", false, access.DenyNoMatch},
		{"a photo of a photo", "liveness/image_F1.jpg", false, access.DenySpoof},
		{"another photo of a photo", "liveness/image_F2.jpg", false, access.DenySpoof},
	}
	for _, c := range cases {
		d := ask(photo(c.file))
		if d.Grant != c.grant || d.Reason != c.reason {
			t.Errorf("%s: grant %v %q, want %v %q", c.name, d.Grant, d.Reason, c.grant, c.reason)
		}
		if !d.Grant && d.PersonID != "" {
			t.Errorf("%s: a denied face was told it looked like %s", c.name, d.PersonID)
		}
	}
	if d := ask(grey()); d.Grant || d.Reason != access.DenyNoFace {
		t.Errorf("no face: %+v", d)
	}
	// Erasure: his template goes, and his face opens nothing.
	call("DELETE", "/v1/people/obama/biometrics", "", 400) // a reason is required
	call("DELETE", "/v1/people/obama/biometrics?reason=moved+out", "", 200)
	if d := ask(photo("faces/obama/1.jpg")); d.Grant || d.Reason != access.DenyNoMatch {
		t.Errorf("after erasure: %+v", d)
	}
	// Enrolled again from the command line: consent required, then his face opens the door again.
	if code, _, _ := runCmd("enroll", "--person", "obama", "--data", data, filepath.Join(td, "faces/obama/2.jpg")); code == 0 {
		t.Fatal("enroll --person without --consent succeeded")
	}
	if code, eout, eerr := runCmd("enroll", "--person", "obama", "--consent", "signed again", "--data", data, filepath.Join(td, "faces/obama/2.jpg")); code != 0 || !strings.Contains(eout, "1 of 1") {
		t.Fatalf("enroll --person: %d %s %s", code, eout, eerr)
	}
	// The serving node hears of the change (LISTEN/NOTIFY) and reloads.
	granted := false
	for i := 0; i < 30 && !granted; i++ {
		time.Sleep(100 * time.Millisecond)
		granted = ask(photo("faces/obama/1.jpg")).Grant
	}
	if !granted {
		t.Error("the face enrolled from the command line does not open the door")
	}
	if code, vout, _ := runCmd("audit", "verify", "--data", data); code != 0 {
		t.Fatalf("audit verify: %s", vout)
	}
	n.Stop()
}

// TestFacesReembedFromCrops: a resident enrolled under dlib's model is described again with
// Intel's from the crop kept sealed at enrolment, and another photo of him then opens his door
// under Intel's model; a resident enrolled before crops were kept is named as needing to enrol
// again.
func TestFacesReembedFromCrops(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	mdir, td := testenv.Models(t), testenv.Testdata(t)
	e, err := access.NewEngine(ctx, pool, audit.New(pool, filepath.Join(t.TempDir(), "anchor")), testenv.Secret())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	admin := auth.Actor{Name: "office", Role: auth.RoleAdmin}
	must(e.UseFaceSpace(ctx, space.DlibV1))
	for _, p := range []string{"obama", "biden"} {
		must(e.AddPerson(ctx, admin, p, p, "resident"))
		_, _, err := e.AddCredential(ctx, admin, p, access.NewCredential{Kind: access.KindCard, Value: "CARD-" + p})
		must(err)
	}
	_, err = e.AddDoor(ctx, admin, access.Door{ID: "gate", Camera: "cam-gate", FacePolicy: access.PolicyFace})
	must(err)
	must(e.AddRule(ctx, admin, "gate", "kind", "resident", ""))
	read := func(f string) []byte {
		b, err := os.ReadFile(filepath.Join(td, f))
		must(err)
		return b
	}
	dlibPhotos := pipeline.NewPhotos(mdir, space.DlibV1)
	defer dlibPhotos.Close()
	tpl, err := dlibPhotos.Enrol(ctx, read("faces/obama/2.jpg"))
	must(err)
	tpl.Consent = "signed form (test)"
	_, err = e.AddFaceTemplate(ctx, admin, "obama", tpl)
	must(err)
	old := access.FaceTemplate{Embedding: access.SyntheticFace(space.DlibV1, "biden"), Quality: 0.9, Liveness: 0.9, Consent: "before crops"}
	_, err = e.AddFaceTemplate(ctx, admin, "biden", old) // no crop kept
	must(err)

	intel := pipeline.NewPhotos(mdir, space.Intel0095)
	defer intel.Close()
	r, err := reembedTemplates(ctx, e, intel, space.Intel0095, admin, nil)
	must(err)
	if r.done != 1 || len(r.failed) != 0 || len(r.noCrop) != 1 || r.noCrop[0] != "biden" {
		t.Fatalf("reembed: %+v", r)
	}
	if again, err := reembedTemplates(ctx, e, intel, space.Intel0095, admin, nil); err != nil || again.done != 0 {
		t.Fatalf("a second run described the same crop again: %+v %v", again, err)
	}
	must(e.UseFaceSpace(ctx, space.Intel0095))
	probe, err := intel.Probe(ctx, read("faces/obama/1.jpg"))
	must(err)
	d, err := e.DecideFace(ctx, "gate", probe, "n-1")
	must(err)
	if !d.Grant {
		t.Fatalf("obama's other photo under intel-0095 after re-embedding: %+v", d)
	}
	probe, err = intel.Probe(ctx, read("faces/biden/1.jpg"))
	must(err)
	if d, _ := e.DecideFace(ctx, "gate", probe, "n-2"); d.Grant {
		t.Fatalf("biden (no intel template) opened the door: %+v", d)
	}
}

// TestFacesReembedStoredEvents: face events stored under dlib's model are described again with
// Intel's from their best shots, so that a search after the change still finds them; an event
// whose best shot is gone is counted and keeps its old vector.
func TestFacesReembedStoredEvents(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	mdir, td := testenv.Models(t), testenv.Testdata(t)
	st := events.New(pool)
	blobs := blob.FS{Root: t.TempDir()}
	dlibPhotos := pipeline.NewPhotos(mdir, space.DlibV1)
	defer dlibPhotos.Close()
	shot, err := os.ReadFile(filepath.Join(td, "faces/obama/1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	probe, err := dlibPhotos.Probe(ctx, shot)
	if err != nil || !probe.Found {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	var evs []*event.Event
	for i := range 2 {
		e := &event.Event{ID: event.NewID(now.Add(time.Duration(i) * time.Second)), Camera: "cam001", Kind: event.KindFace,
			Time: now.Add(time.Duration(i) * time.Second), First: now, Frames: 2, Quality: 0.9,
			Embedding: event.PackVector(probe.Embedding), Model: space.DlibV1.Name}
		evs = append(evs, e)
	}
	if err := st.EnsureAhead(ctx, now.Add(-24*time.Hour), 3); err != nil {
		t.Fatal(err)
	}
	key := func(e *event.Event) string {
		if e == evs[1] {
			return "snapshots/gone.jpg" // its best shot was lost
		}
		return "snapshots/" + e.ID + ".jpg"
	}
	if err := blobs.Put(ctx, key(evs[0]), shot, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Insert(ctx, evs, key); err != nil {
		t.Fatal(err)
	}
	intel := pipeline.NewPhotos(mdir, space.Intel0095)
	defer intel.Close()
	done, lost, err := reembedEvents(ctx, st, blobs, intel, space.Intel0095, now.Add(-time.Hour), nil)
	if err != nil || done != 1 || lost != 1 {
		t.Fatalf("reembed events: %d done, %d lost, %v", done, lost, err)
	}
	st.UseFaceSpace(space.Intel0095)
	emb, err := st.Embedding(ctx, evs[0].ID)
	if err != nil || len(emb) != space.Intel0095.Dims {
		t.Fatalf("described again: %d values, %v", len(emb), err)
	}
	other, _ := intel.Probe(ctx, shot)
	if d := space.Distance(emb, other.Embedding); d > 0.1 {
		t.Fatalf("the stored face is %.2f from the same photo's", d)
	}
	if _, err := st.Embedding(ctx, evs[1].ID); !errors.Is(err, events.ErrOtherModel) {
		t.Fatalf("the event without a best shot: %v", err)
	}
}
