package api

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/footage"
)

// ExportStore keeps case files (the blob store).
type ExportStore interface {
	Put(ctx context.Context, key string, data []byte, contentType string) error
	Get(ctx context.Context, key string) ([]byte, error)
}

// exportFile is one file of a case file.
type exportFile struct {
	Name   string `json:"name"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url"`
}

// exportEvent is one event of a case file and what could not be included.
type exportEvent struct {
	events.Event
	Snapshot string   `json:"snapshot_file,omitempty"`
	Footage  string   `json:"footage_file,omitempty"`
	Missing  []string `json:"missing,omitempty"`
}

// manifest describes a case file; its own sha256 is returned with it and audited.
type manifest struct {
	ID        string        `json:"id"`
	CreatedAt time.Time     `json:"created_at"`
	CreatedBy string        `json:"created_by"`
	Role      string        `json:"role"`
	Reason    string        `json:"reason"`
	Watermark string        `json:"watermark"`
	PreRoll   float64       `json:"pre_roll_s"`
	PostRoll  float64       `json:"post_roll_s"`
	Events    []exportEvent `json:"events"`
	Ranges    []exportRange `json:"ranges,omitempty"`
	Files     []exportFile  `json:"files"`
	// Masks are the privacy masks applied to the footage files (blacked out in every frame,
	// re-encoded; the recordings themselves are unchanged).
	Masks []exportMask `json:"masks,omitempty"`
}

// exportMask says which privacy masks a camera's footage files were exported with.
type exportMask struct {
	Camera   string        `json:"camera"`
	Polygons privacy.Masks `json:"polygons"`
	Files    []string      `json:"files"`
}

// exportRange is a stretch of one camera's footage in a case file (marked on the review
// timeline), and what could not be included.
type exportRange struct {
	Camera  string    `json:"camera"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Footage string    `json:"footage_file,omitempty"`
	Missing []string  `json:"missing,omitempty"`
}

// maxRanges bounds the footage ranges of one case file (the review page plays up to 4 cameras).
const maxRanges = 4

var exportID = regexp.MustCompile(`^[0-9]{8}-[0-9a-f]{12}$`)

// exportRequest is POST /v1/exports's body.
type exportRequest struct {
	EventIDs []string      `json:"event_ids"`
	Ranges   []exportRange `json:"ranges"`
	Reason   string        `json:"reason"`
	PreRoll  *float64      `json:"pre_roll"`
	PostRoll *float64      `json:"post_roll"`
}

// decodeExport reads and checks an export request: its reason, 1 to 200 events, and the roll
// around each (default 5 s before, 10 s after, at most 600 s together).
func decodeExport(w http.ResponseWriter, r *http.Request) (req exportRequest, reason string, pre, post float64, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return req, "", 0, 0, uploadError(err)
	}
	if reason, err = reasonOf(req.Reason); err != nil {
		return req, "", 0, 0, err
	}
	if len(req.EventIDs) > 200 || (len(req.EventIDs) == 0 && len(req.Ranges) == 0) {
		return req, "", 0, 0, badRequest("event_ids must list 1 to 200 events, or ranges name footage to export")
	}
	if len(req.Ranges) > maxRanges {
		return req, "", 0, 0, badRequest(fmt.Sprintf("at most %d ranges", maxRanges))
	}
	for i, rg := range req.Ranges {
		if rg.Camera == "" || !rg.To.After(rg.From) || rg.To.Sub(rg.From) > time.Hour {
			return req, "", 0, 0, badRequest(fmt.Sprintf("ranges[%d]: a camera, and from before to, at most one hour apart", i))
		}
		req.Ranges[i].Footage, req.Ranges[i].Missing = "", nil
	}
	pre, post = 5.0, 10.0
	if req.PreRoll != nil {
		pre = *req.PreRoll
	}
	if req.PostRoll != nil {
		post = *req.PostRoll
	}
	if pre < 0 || post < 0 || pre+post > 600 {
		return req, "", 0, 0, badRequest("pre_roll and post_roll are seconds, together at most 600")
	}
	return req, reason, pre, post, nil
}

// createExport is POST /v1/exports: {"event_ids": [...], "reason": "...", "pre_roll": 5,
// "post_roll": 10}. It writes each event's snapshot and the footage around it as MP4, and a
// manifest with the SHA-256 of every file, who made it and why.
func (s *Server) createExport(w http.ResponseWriter, r *http.Request) {
	if s.store == nil || s.exports == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	req, reason, pre, post, err := decodeExport(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	who, role := "anonymous", "none"
	if p := principalOf(r); p != nil {
		who, role = p.Name, p.Role
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	now := time.Now().UTC()
	b := &exportBuilder{s: s, ctx: r.Context(), m: manifest{ID: now.Format("20060102") + "-" + hex.EncodeToString(rb[:]),
		CreatedAt: now, CreatedBy: who, Role: role, Reason: reason, PreRoll: pre, PostRoll: post}}
	b.m.Watermark = fmt.Sprintf("Exported by %s (%s) on %s for: %s", who, role, now.Format(time.RFC3339), reason)
	seen := map[string]bool{}
	for _, id := range req.EventIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := b.add(id); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	for _, rg := range req.Ranges {
		if err := b.addRange(rg); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	m := &b.m
	mj, _ := json.MarshalIndent(m, "", "  ")
	if err := s.exports.Put(r.Context(), b.prefix()+"manifest.json", mj, "application/json"); err != nil {
		s.writeError(w, r, err)
		return
	}
	sum := sha256.Sum256(mj)
	n := len(m.Events)
	// The case file's record (who is in it: erasure names it) and its audit row commit together.
	rec := events.Export{ID: m.ID, CreatedAt: m.CreatedAt, CreatedBy: who, Reason: reason, ManifestSHA256: hex.EncodeToString(sum[:])}
	for _, e := range m.Events {
		rec.EventIDs = append(rec.EventIDs, e.ID)
		if e.PersonID != nil {
			rec.PersonIDs = append(rec.PersonIDs, *e.PersonID)
		}
		if e.Plate != nil {
			rec.Plates = append(rec.Plates, *e.Plate)
		}
	}
	d, _ := json.Marshal(map[string]any{"export": m.ID, "event_ids": req.EventIDs, "ranges": req.Ranges, "files": len(m.Files), "manifest_sha256": rec.ManifestSHA256})
	var seq int64
	if s.auditor != nil {
		seq, err = s.auditor.Change(r.Context(), audit.Entry{Actor: who, Role: role, Action: "export.create", Reason: reason, Detail: d, Results: &n},
			nil, func(tx pgx.Tx) error { return s.store.InsertExport(r.Context(), tx, rec) })
		if err != nil {
			b.removeFiles() // an export that is not audited is not made
			s.writeError(w, r, fmt.Errorf("%w: %v", errAuditUnavailable, err))
			return
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"export": m, "manifest_url": "/v1/exports/" + m.ID + "/files/manifest.json",
		"manifest_sha256": hex.EncodeToString(sum[:]), "audit_seq": seq})
}

// exportBuilder writes one case file's files and keeps its manifest.
type exportBuilder struct {
	s   *Server
	ctx context.Context
	m   manifest
}

func (b *exportBuilder) prefix() string { return "exports/" + b.m.ID + "/" }

// removeFiles deletes what was written of the case file (best effort, with its own context: the
// client may be gone).
func (b *exportBuilder) removeFiles() {
	d, ok := b.s.exports.(interface {
		Delete(ctx context.Context, key string) error
	})
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range b.m.Files {
		_ = d.Delete(ctx, b.prefix()+f.Name)
	}
	_ = d.Delete(ctx, b.prefix()+"manifest.json")
}

// put stores one file of the case file and lists it with its SHA-256.
func (b *exportBuilder) put(name string, data []byte, ct string) error {
	if err := b.s.exports.Put(b.ctx, b.prefix()+name, data, ct); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	b.m.Files = append(b.m.Files, exportFile{Name: name, Bytes: len(data), SHA256: hex.EncodeToString(sum[:]),
		URL: "/v1/exports/" + b.m.ID + "/files/" + name})
	return nil
}

// addRange writes a stretch of a camera's footage; a range with nothing recorded is listed as
// missing, not an error.
func (b *exportBuilder) addRange(rg exportRange) error {
	if b.s.clips == nil {
		rg.Missing = append(rg.Missing, "footage (this node records nothing)")
		b.m.Ranges = append(b.m.Ranges, rg)
		return nil
	}
	name := fmt.Sprintf("%s-%s.mp4", safeName(rg.Camera), rg.From.UTC().Format("20060102T150405Z"))
	var err error
	if rg.Footage, rg.Missing, err = b.putClip(name, rg.Camera, rg.From, rg.To); err != nil {
		return err
	}
	b.m.Ranges = append(b.m.Ranges, rg)
	return nil
}

// putClip writes the footage of [from, to] as the file name; it returns the file's name ("" when
// nothing was recorded) and what could not be included.
func (b *exportBuilder) putClip(name, camera string, from, to time.Time) (string, []string, error) {
	mp4, skipped, err := b.s.clips.Clip(b.ctx, camera, from, to)
	switch {
	case errors.Is(err, footage.ErrNoFootage):
		return "", []string{"footage (none recorded in that range)"}, nil
	case err != nil:
		return "", nil, err
	}
	masks, err := b.s.masksOf(b.ctx, camera)
	if err != nil {
		return "", nil, err
	}
	if len(masks) > 0 { // never exported unmasked: left out when it cannot be masked
		if mp4, err = footage.MaskMP4(b.ctx, mp4, masks); err != nil {
			return "", []string{"footage (its privacy masks could not be applied: " + err.Error() + ")"}, nil
		}
	}
	if err := b.put(name, mp4, "video/mp4"); err != nil {
		return "", nil, err
	}
	if len(masks) > 0 {
		b.masked(camera, masks, name)
	}
	var missing []string
	for _, sk := range skipped {
		missing = append(missing, "footage segment "+sk)
	}
	return name, missing, nil
}

// masked lists a footage file among those exported with its camera's masks.
func (b *exportBuilder) masked(camera string, masks privacy.Masks, file string) {
	for i := range b.m.Masks {
		if b.m.Masks[i].Camera == camera {
			b.m.Masks[i].Files = append(b.m.Masks[i].Files, file)
			return
		}
	}
	b.m.Masks = append(b.m.Masks, exportMask{Camera: camera, Polygons: masks, Files: []string{file}})
}

// safeName keeps a camera id usable as a file name: letters, digits, '-' and '_'.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, id)
}

// add writes an event's snapshot and the footage around it; what cannot be had is listed as
// missing, not an error.
func (b *exportBuilder) add(id string) error {
	s := b.s
	e, err := s.store.Get(b.ctx, id)
	if errors.Is(err, events.ErrNotFound) {
		return badRequest("event " + id + " does not exist")
	}
	if err != nil {
		return err
	}
	xe := exportEvent{Event: e}
	if e.Snapshot != nil && s.blobs != nil {
		data, err := s.blobs.Get(b.ctx, *e.Snapshot)
		switch {
		case err == nil:
			xe.Snapshot = e.ID + ".jpg"
			if err := b.put(xe.Snapshot, data, "image/jpeg"); err != nil {
				return err
			}
		case errors.Is(err, blob.ErrNotFound):
			xe.Missing = append(xe.Missing, "snapshot (not in the blob store)")
		default:
			return err
		}
	}
	if s.clips != nil {
		from := e.Time.Add(-time.Duration(b.m.PreRoll * float64(time.Second)))
		to := e.Time.Add(time.Duration(b.m.PostRoll * float64(time.Second)))
		name, missing, err := b.putClip(e.ID+".mp4", e.Camera, from, to)
		if err != nil {
			return err
		}
		xe.Footage, xe.Missing = name, append(xe.Missing, missing...)
	}
	b.m.Events = append(b.m.Events, xe)
	return nil
}

// exportFile reads one stored file of a case file; a missing one is answered 404.
func (s *Server) exportFile(w http.ResponseWriter, r *http.Request, id, name string) ([]byte, bool) {
	data, err := s.exports.Get(r.Context(), "exports/"+id+"/"+name)
	if errors.Is(err, blob.ErrNotFound) {
		s.writeError(w, r, errNotFound)
		return nil, false
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return data, true
}

// exportFileGet is GET /v1/exports/{id}/files/{name}: one file of a case file (downloads audited).
func (s *Server) exportFileGet(w http.ResponseWriter, r *http.Request) {
	if s.exports == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	id, name := r.PathValue("id"), r.PathValue("name")
	if !exportID.MatchString(id) || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") || name == "" {
		s.writeError(w, r, errNotFound)
		return
	}
	data, ok := s.exportFile(w, r, id, name)
	if !ok {
		return
	}
	if _, ok := s.audit(w, r, "export.download", "", map[string]string{"export": id, "file": name}, nil); !ok {
		return
	}
	ct := "application/octet-stream"
	switch {
	case strings.HasSuffix(name, ".jpg"):
		ct = "image/jpeg"
	case strings.HasSuffix(name, ".mp4"):
		ct = "video/mp4"
	case strings.HasSuffix(name, ".json"):
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+"-"+name))
	_, _ = w.Write(data)
}

// exportZip is GET /v1/exports/{id}/zip: the whole case file as one ZIP (the manifest first, then
// its files as listed; stored, not compressed: JPEG and MP4 are compressed already), streamed one
// file at a time. The download is audited like a file's.
func (s *Server) exportZip(w http.ResponseWriter, r *http.Request) {
	if s.exports == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	id := r.PathValue("id")
	if !exportID.MatchString(id) {
		s.writeError(w, r, errNotFound)
		return
	}
	mj, ok := s.exportFile(w, r, id, "manifest.json")
	if !ok {
		return
	}
	var m manifest
	if err := json.Unmarshal(mj, &m); err != nil {
		s.writeError(w, r, fmt.Errorf("export %s: manifest: %w", id, err))
		return
	}
	if _, ok := s.audit(w, r, "export.download", "", map[string]string{"export": id, "file": "(zip)"}, nil); !ok {
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "case-"+id+".zip"))
	longLived(w, 0)
	zw := zip.NewWriter(w)
	put := func(name string, data []byte) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: id + "/" + name, Method: zip.Store, Modified: m.CreatedAt})
		if err == nil {
			_, err = f.Write(data)
		}
		return err
	}
	if err := put("manifest.json", mj); err != nil {
		return
	}
	for _, f := range m.Files {
		if strings.ContainsAny(f.Name, "/\\") || strings.HasPrefix(f.Name, ".") || f.Name == "manifest.json" {
			continue
		}
		data, err := s.exports.Get(r.Context(), "exports/"+id+"/"+f.Name)
		if err != nil {
			s.log.Warn("export zip: a file is missing", "export", id, "file", f.Name, "err", err)
			continue // the manifest lists it with its sha256: the gap shows
		}
		if put(f.Name, data) != nil {
			return
		}
	}
	_ = zw.Close()
}
