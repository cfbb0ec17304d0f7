package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/testkit/testdata"
)

// testSearch runs the investigator's searches against a serving node that has stored a face event
// of Barack Obama (faceID) and reads of plate: by photo, by event, by plate fragment, his
// timeline; roles, bad input, and the audit chain they leave.
func testSearch(t *testing.T, base, data string, tokens map[string]string, faceID, plate string) {
	t.Helper()
	inv := &http.Client{Transport: bearer{tokens["investigator"]}}
	op := &http.Client{Transport: bearer{tokens["operator"]}}
	patrol := &http.Client{Transport: bearer{tokens["patrol"]}}
	now := time.Now().UTC()
	from, to := now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	photo, err := os.ReadFile(filepath.Join(testdata.Dir(), "faces/obama/1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{"from": from, "to": to, "reason": "case 2026-118: pickpocket at gate 3"}
	type match struct {
		EventID  string  `json:"event_id"`
		Camera   string  `json:"camera"`
		Distance float32 `json:"distance"`
	}
	var res struct {
		Matches  []match `json:"matches"`
		AuditSeq int64   `json:"audit_seq"`
		Error    string  `json:"error"`
	}
	post := func(c *http.Client, fields map[string]string, img []byte, want int) {
		t.Helper()
		body, ct := multipartBody(fields, img)
		r, err := c.Post(base+"/v1/search/faces", ct, body)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		res.Matches, res.Error = nil, ""
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &res)
		if r.StatusCode != want {
			t.Fatalf("search faces: %d %s, want %d", r.StatusCode, b, want)
		}
	}
	// By photo: another picture of him finds his event.
	post(inv, fields, photo, 200)
	found := false
	for _, m := range res.Matches {
		found = found || m.EventID == faceID
	}
	if !found || res.AuditSeq == 0 {
		t.Fatalf("search by photo did not find event %s: %+v", faceID, res)
	}
	// By event: the event itself first, at distance 0.
	js, _ := json.Marshal(map[string]string{"event_id": faceID, "from": from, "to": to, "reason": "case 2026-118"})
	r, err := inv.Post(base+"/v1/search/faces", "application/json", bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(r.Body).Decode(&res)
	r.Body.Close()
	if r.StatusCode != 200 || len(res.Matches) == 0 || res.Matches[0].EventID != faceID || res.Matches[0].Distance > 1e-3 {
		t.Fatalf("search by event: %d %+v", r.StatusCode, res)
	}
	// A group photo: searched for the largest face, and the answer says so; face=N picks another.
	group, err := os.ReadFile(filepath.Join(testdata.Dir(), "groups/obama_and_biden.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var many struct {
		Faces []any  `json:"faces_found"`
		Used  int    `json:"face_used"`
		Note  string `json:"note"`
	}
	for _, pick := range []string{"", "1"} {
		f := map[string]string{"from": from, "to": to, "reason": "case 2026-118", "face": pick}
		body, ct := multipartBody(f, group)
		r, err := inv.Post(base+"/v1/search/faces", ct, body)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(r.Body).Decode(&many)
		r.Body.Close()
		if r.StatusCode != 200 || len(many.Faces) < 2 || (pick == "" && (many.Used != 0 || !strings.Contains(many.Note, "faces"))) || (pick == "1" && many.Used != 1) {
			t.Fatalf("group photo, face %q: %d %+v", pick, r.StatusCode, many)
		}
		many.Note = ""
	}
	post(inv, map[string]string{"from": from, "to": to, "reason": "x", "face": "9"}, group, 400)
	// Roles: patrol and operator may not search faces.
	post(patrol, fields, photo, 403)
	post(op, fields, photo, 403)
	post(&http.Client{}, fields, photo, 401)
	// Bad input: clear 4xx, never 500.
	noReason := map[string]string{"from": from, "to": to}
	post(inv, noReason, photo, 400)
	post(inv, map[string]string{"from": to, "to": from, "reason": "x"}, photo, 400)
	post(inv, map[string]string{"to": to, "reason": "x"}, photo, 400)
	post(inv, fields, []byte("\xff\xd8\xff\xe0 this is not really a JPEG"), 422)
	post(inv, fields, grey(), 422)
	if !strings.Contains(res.Error, "no face") {
		t.Fatalf("no-face photo: %q", res.Error)
	}
	post(inv, fields, make([]byte, 11<<20), 413)
	post(inv, map[string]string{"from": from, "to": to, "reason": "'; DELETE FROM audit; --", "cameras": "cam001'; DROP TABLE events; --", "k": "5"}, photo, 200)
	if len(res.Matches) != 0 {
		t.Fatalf("an unknown camera matched: %+v", res.Matches)
	}

	// Plates: from a fragment missing two characters, as an operator.
	runes := []rune(plate)
	frag := string(runes[1:3]) + string(runes[4:])
	var pr struct {
		Plates []struct {
			Plate  string `json:"plate"`
			How    string `json:"match"`
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
		} `json:"plates"`
	}
	get := func(c *http.Client, path string, q url.Values, want int, into any) {
		t.Helper()
		r, err := c.Get(base + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != want {
			t.Fatalf("GET %s?%s: %d %s, want %d", path, q.Encode(), r.StatusCode, b, want)
		}
		if into != nil {
			json.Unmarshal(b, into)
		}
	}
	get(op, "/v1/search/plates", url.Values{"q": {frag}, "from": {from}, "to": {to}, "reason": {"hit and run"}}, 200, &pr)
	if len(pr.Plates) == 0 || pr.Plates[0].Plate != plate || len(pr.Plates[0].Events) == 0 {
		t.Fatalf("plate %s from %q: %+v", plate, frag, pr)
	}
	get(op, "/v1/search/plates", url.Values{"q": {"' OR 1=1 --"}, "from": {from}, "to": {to}, "reason": {"x"}}, 400, nil)
	get(op, "/v1/search/plates", url.Values{"q": {frag}, "from": {from}, "to": {to}}, 400, nil)
	get(patrol, "/v1/search/plates", url.Values{"q": {frag}, "from": {from}, "to": {to}, "reason": {"x"}}, 403, nil)

	// His timeline.
	var tl struct {
		Appearances []struct {
			ID     string `json:"id"`
			Camera string `json:"camera"`
		} `json:"appearances"`
		Path []string `json:"cameras_in_order"`
	}
	get(inv, "/v1/search/timeline", url.Values{"person": {"barack-obama"}, "from": {from}, "to": {to}, "reason": {"case 2026-118"}}, 200, &tl)
	if len(tl.Appearances) == 0 || len(tl.Path) == 0 || tl.Path[0] != "cam001" {
		t.Fatalf("timeline: %+v", tl)
	}

	// A case file: his event's snapshot and footage, each file's SHA-256 in the manifest.
	exp := func(c *http.Client, body string, want int) map[string]any {
		t.Helper()
		r, err := c.Post(base+"/v1/exports", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &out)
		if r.StatusCode != want {
			t.Fatalf("POST /v1/exports %s: %d %s, want %d", body, r.StatusCode, b, want)
		}
		return out
	}
	exp(patrol, `{"event_ids":["`+faceID+`"],"reason":"x"}`, 403)
	exp(inv, `{"event_ids":["`+faceID+`"]}`, 400)
	exp(inv, `{"event_ids":["00000000000000000000ff"],"reason":"x"}`, 400)
	exp(inv, `{"event_ids":[], "reason":"x"}`, 400)
	out := exp(inv, `{"event_ids":["`+faceID+`"],"reason":"case 2026-118","pre_roll":3,"post_roll":3}`, 201)
	m := out["export"].(map[string]any)
	if m["created_by"] != "test investigator" || !strings.Contains(m["watermark"].(string), "case 2026-118") {
		t.Fatalf("manifest: %v", m)
	}
	files := m["files"].([]any)
	kinds := map[string]bool{}
	for _, f := range files {
		f := f.(map[string]any)
		r, err := inv.Get(base + f["url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		sum := sha256.Sum256(b)
		if r.StatusCode != 200 || hex.EncodeToString(sum[:]) != f["sha256"] || len(b) != int(f["bytes"].(float64)) {
			t.Fatalf("export file %v: %d, %d bytes, sha256 %x", f, r.StatusCode, len(b), sum)
		}
		kinds[filepath.Ext(f["name"].(string))] = true
	}
	if !kinds[".jpg"] || !kinds[".mp4"] {
		t.Fatalf("case file lacks a snapshot or footage: %v (events %v)", files, m["events"])
	}
	if r, _ := patrol.Get(base + files[0].(map[string]any)["url"].(string)); r.StatusCode != 403 {
		t.Fatalf("patrol downloads an export: %d", r.StatusCode)
	}
	if r, _ := inv.Get(base + "/v1/exports/" + m["id"].(string) + "/files/..%2Fmanifest.json"); r.StatusCode != 404 {
		t.Fatalf("path escape: %d", r.StatusCode)
	}

	// The privacy officer asks who searched for him, when and why: the photo search (by whom it
	// found), the timeline and the listing by person are all there; a patrol officer may not ask.
	code, aud, errs := runCmd("token", "create", "--role", "auditor", "--name", "privacy officer", "--data", data)
	if code != 0 {
		t.Fatalf("auditor token: %s", errs)
	}
	auditor := &http.Client{Transport: bearer{strings.TrimSpace(aud)}}
	var review struct {
		Entries []struct{ Actor, Action, Reason string } `json:"entries"`
	}
	get(auditor, "/v1/audit", url.Values{"subject": {"barack-obama"}}, 200, &review)
	seen := map[string]bool{}
	for _, e := range review.Entries {
		if e.Actor == "test investigator" && strings.HasPrefix(e.Reason, "case 2026-118") {
			seen[e.Action] = true
		}
	}
	if !seen["search.faces"] || !seen["search.timeline"] {
		t.Fatalf("who searched for him: %+v", review.Entries)
	}
	get(patrol, "/v1/audit", url.Values{"subject": {"barack-obama"}}, 403, nil)

	// Erasure of his face data: his face events go from the bus, the store, the index and the
	// blob store, no cache serves his best shot, and the answer names the case file that still
	// holds him.
	code, aout, errs := runCmd("token", "create", "--role", "admin", "--name", "privacy officer", "--data", data)
	if code != 0 {
		t.Fatalf("admin token: %s", errs)
	}
	admin := &http.Client{Transport: bearer{strings.TrimSpace(aout)}}
	req, _ := http.NewRequest("DELETE", base+"/v1/people/barack-obama/biometrics?reason=request+of+the+person", nil)
	r, err = admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var erased struct {
		Events  int                   `json:"face_events_erased"`
		Bus     int                   `json:"bus_messages_erased"`
		Holding []struct{ ID string } `json:"exports_still_holding"`
	}
	json.NewDecoder(r.Body).Decode(&erased)
	r.Body.Close()
	if r.StatusCode != 200 || erased.Events == 0 || erased.Bus == 0 || len(erased.Holding) != 1 || erased.Holding[0].ID != m["id"] {
		t.Fatalf("erasure: %d %+v", r.StatusCode, erased)
	}
	if r, _ := inv.Get(base + "/v1/events/" + faceID + "/snapshot"); r.StatusCode != 404 {
		t.Fatalf("his best shot after erasure: %d", r.StatusCode)
	}
	post(inv, fields, photo, 200)
	for _, mt := range res.Matches {
		if mt.EventID == faceID {
			t.Fatalf("the face index still finds erased event %s", faceID)
		}
	}

	// Every search above that was answered left an audit record, and the chain is intact.
	code, vout, errs := runCmd("audit", "verify", "--data", data)
	if code != 0 || !strings.Contains(vout, "intact") {
		t.Fatalf("audit verify: %d %s %s", code, vout, errs)
	}
	// Someone with database access rewrites why a search was made: verify says so and fails.
	conn, err := pgx.Connect(context.Background(), os.Getenv("VIGIL_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `ALTER TABLE audit DISABLE TRIGGER audit_append_only;
		UPDATE audit SET reason = 'routine check' WHERE action = 'search.faces';
		ALTER TABLE audit ENABLE TRIGGER audit_append_only`); err != nil {
		t.Fatal(err)
	}
	if code, vout, _ := runCmd("audit", "verify", "--data", data); code == 0 || !strings.Contains(vout, "TAMPERED") {
		t.Fatalf("audit verify after an edit: %d %s", code, vout)
	}
}

func multipartBody(fields map[string]string, img []byte) (io.Reader, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if img != nil {
		fw, _ := w.CreateFormFile("image", "photo.jpg")
		fw.Write(img)
	}
	w.Close()
	return &b, w.FormDataContentType()
}

// grey is a JPEG with no face in it.
func grey() []byte {
	img := image.NewGray(image.Rect(0, 0, 320, 240))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	img.Set(10, 10, color.White)
	var b bytes.Buffer
	jpeg.Encode(&b, img, nil)
	return b.Bytes()
}
