package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/recognizers/plate"
	"github.com/vigil-oss/vigil/storage/blob"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/footage"
)

// EventStore is what the API needs from the event store.
type EventStore interface {
	Query(ctx context.Context, f events.Filter) ([]events.Event, string, error)
	Get(ctx context.Context, id string) (events.Event, error)
	InsertExport(ctx context.Context, tx pgx.Tx, x events.Export) error
	IdentitiesOf(ctx context.Context, ids []string, from, to time.Time) (map[string]events.Identity, error)
	Alerts(ctx context.Context, f events.AlertFilter) ([]events.Alert, string, error)
}

// Blobs is what the API needs from the blob store.
type Blobs interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// maxWindow bounds a listing's time range: months of events are searched by person or plate
// through their indexes, never scanned by accident.
const maxWindow = 366 * 24 * time.Hour

// storedEvent is an event as the API returns it: the stored row plus links.
type storedEvent struct {
	events.Event
	SnapshotURL string `json:"snapshot_url,omitempty"`
	URL         string `json:"url"`
}

func withLinks(e events.Event) storedEvent {
	out := storedEvent{Event: e, URL: "/v1/events/" + e.ID}
	if e.Snapshot != nil {
		out.SnapshotURL = "/v1/events/" + e.ID + "/snapshot"
	}
	return out
}

// listEvents is GET /v1/events: from, to (RFC 3339 or Unix seconds; default the last 24 hours),
// camera, kind, person, plate (exact), limit (≤ 1000), cursor.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	if s.store == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	q := r.URL.Query()
	now := time.Now()
	f := events.Filter{From: now.Add(-24 * time.Hour), To: now, Camera: q.Get("camera"), Kind: q.Get("kind"),
		Person: q.Get("person"), Plate: plate.Normalize(q.Get("plate")), Cursor: q.Get("cursor")}
	var err error
	if f.From, f.To, err = queryRange(q, f.From, f.To); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !f.To.After(f.From) {
		s.writeError(w, r, badRequest("the time range is empty or reversed: from must be before to"))
		return
	}
	if f.To.Sub(f.From) > maxWindow {
		s.writeError(w, r, badRequest("the time range is longer than 366 days; narrow it"))
		return
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			s.writeError(w, r, badRequest("limit must be a number from 1 to 1000"))
			return
		}
	}
	switch f.Kind {
	case "", "face", "plate", "alarm":
	default:
		s.writeError(w, r, badRequest("kind must be face, plate or alarm"))
		return
	}
	reason, err := s.tracking(r, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, next, err := s.store.Query(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]storedEvent, len(list))
	level := levelOf(r)
	for i, e := range list {
		redactStored(&e, level)
		out[i] = withLinks(e)
	}
	resp := map[string]any{"events": out, "from": f.From, "to": f.To}
	if next != "" {
		resp["next"] = next
	}
	if f.Person != "" || f.Plate != "" {
		n := len(out)
		seq, ok := s.audit(w, r, "events.track", reason, map[string]any{"person": f.Person, "plate": f.Plate, "camera": f.Camera,
			"kind": f.Kind, "from": f.From, "to": f.To}, &n)
		if !ok {
			return
		}
		resp["audit_seq"] = seq
	}
	writeJSON(w, http.StatusOK, resp)
}

// tracking guards the filters that follow someone: a person's appearances take the roles of a
// face search, a plate's those of a plate search, and either a reason that is audited with the
// query (as /v1/search/timeline does). It returns the reason.
func (s *Server) tracking(r *http.Request, f events.Filter) (string, error) {
	if f.Person == "" && f.Plate == "" {
		return "", nil
	}
	roles := rolePlates
	if f.Person != "" {
		roles = roleSearch
	}
	if p := principalOf(r); p != nil && !slices.Contains(roles, p.Role) {
		return "", forbidden{role: p.Role, allowed: roles}
	}
	reason, err := reasonOf(r.URL.Query().Get("reason"))
	if err != nil {
		return "", badRequest("following a person or a plate needs a reason (audited): " + err.Error())
	}
	return reason, nil
}

// queryRange reads the optional from and to of a query, keeping the defaults given for those
// absent; a malformed one is a bad request naming it.
func queryRange(q url.Values, from, to time.Time) (time.Time, time.Time, error) {
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return from, to, badRequest(p.name + ": " + err.Error())
			}
			*p.t = t
		}
	}
	return from, to, nil
}

func parseTime(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, errors.New("want RFC 3339 (2026-11-29T08:00:00Z) or Unix seconds")
	}
	return t, nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	if s.store == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	e, err := s.store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, events.ErrNotFound) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	redactStored(&e, levelOf(r))
	writeJSON(w, http.StatusOK, withLinks(e))
}

// snapshot serves an event's best shot: from the blob store when stored, else from the live
// cache of recent events.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, ok := s.snaps.get(id)
	if !ok && s.store != nil && s.blobs != nil {
		if e, err := s.store.Get(r.Context(), id); err == nil && e.Snapshot != nil {
			// In S3: send the client straight to the object with a short-lived presigned URL.
			if p, can := s.blobs.(presigner); can {
				if u, err := p.Presign(r.Context(), *e.Snapshot, 10*time.Minute); err == nil {
					if _, ok := s.audit(w, r, "snapshot.view", "", map[string]any{"event": id}, nil); !ok {
						return
					}
					http.Redirect(w, r, u, http.StatusTemporaryRedirect)
					return
				}
			}
			data, err := s.blobs.Get(r.Context(), *e.Snapshot)
			if err != nil && !errors.Is(err, blob.ErrNotFound) {
				s.writeError(w, r, err)
				return
			}
			b, ok = data, err == nil
		}
	}
	if !ok || !strings.HasPrefix(string(b), "\xff\xd8") {
		s.writeError(w, r, errNotFound)
		return
	}
	if _, ok := s.audit(w, r, "snapshot.view", "", map[string]any{"event": id}, nil); !ok {
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(b)
}

var errNoStore = errors.New("no event store")

// presigner is a blob store that can hand out presigned URLs (S3).
type presigner interface {
	Presign(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// Footage cuts recorded video (footage.Clipper).
type Footage interface {
	// Clip returns the MP4 and the segments it had to skip (missing or corrupt), or an error
	// that is footage.ErrNoFootage for a range with no recording.
	Clip(ctx context.Context, camera string, from, to time.Time) ([]byte, []string, error)
	// WriteClip streams it, one segment in memory at a time; nothing is written before the first
	// usable segment.
	WriteClip(ctx context.Context, camera string, from, to time.Time, w io.Writer) ([]string, error)
	// ClipStart is the time a clip of [from, to] starts at (its first frame: the key frame at or
	// before from, or where the recording starts when that is later); footage.ErrNoFootage when
	// nothing was recorded.
	ClipStart(ctx context.Context, camera string, from, to time.Time) (time.Time, error)
	// Recorded is the recorded spans overlapping [from, to], oldest first.
	Recorded(ctx context.Context, camera string, from, to time.Time) ([]footage.Span, error)
	// Usage is every camera's recorded segments, bytes and last segment's end.
	Usage(ctx context.Context) (map[string]footage.Usage, error)
}

// maxTimeline bounds a recordings query: a week of a camera's spans.
const maxTimeline = 7 * 24 * time.Hour

// recordings is GET /v1/cameras/{id}/recordings?from&to (default the last hour, at most 7 days):
// the recorded spans and the gaps between them, for the review timeline.
func (s *Server) recordings(w http.ResponseWriter, r *http.Request) {
	if s.clips == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	q := r.URL.Query()
	now := time.Now()
	from, to, err := queryRange(q, now.Add(-time.Hour), now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !to.After(from) || to.Sub(from) > maxTimeline {
		s.writeError(w, r, badRequest("from must be before to, at most 7 days apart"))
		return
	}
	spans, err := s.clips.Recorded(r.Context(), r.PathValue("id"), from, to)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type gap struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	}
	gaps := []gap{}
	at := from
	var recorded time.Duration
	for _, sp := range spans {
		if sp.Start.After(at) {
			gaps = append(gaps, gap{at, sp.Start})
		}
		if sp.End.After(at) {
			at = sp.End
		}
		a, b := sp.Start, sp.End
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		recorded += b.Sub(a)
	}
	if to.After(at) {
		gaps = append(gaps, gap{at, to})
	}
	if spans == nil {
		spans = []footage.Span{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"camera": r.PathValue("id"), "from": from, "to": to, "spans": spans, "gaps": gaps,
		"recorded_seconds": recorded.Seconds()})
}

// clipRange reads a clip's from and to (at most an hour apart), answering the error itself
// when they are wrong or the node keeps no recordings.
func (s *Server) clipRange(w http.ResponseWriter, r *http.Request) (from, to time.Time, ok bool) {
	if s.clips == nil {
		s.writeError(w, r, errNoStore)
		return from, to, false
	}
	q := r.URL.Query()
	from, err := parseTime(q.Get("from"))
	if err != nil {
		s.writeError(w, r, badRequest("from: "+err.Error()))
		return from, to, false
	}
	if to, err = parseTime(q.Get("to")); err != nil {
		s.writeError(w, r, badRequest("to: "+err.Error()))
		return from, to, false
	}
	if !to.After(from) || to.Sub(from) > time.Hour {
		s.writeError(w, r, badRequest("from must be before to, at most one hour apart"))
		return from, to, false
	}
	return from, to, true
}

// footage is GET /v1/cameras/{id}/footage?from=&to=: one MP4, cut at key frames, at most an hour.
func (s *Server) footage(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.clipRange(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	reason := q.Get("reason")
	if len(reason) > 500 {
		s.writeError(w, r, badRequest("reason: at most 500 characters"))
		return
	}
	give, ok := s.share(w, r, &s.clipOwners, clipsPerPrincipal, "clips downloading")
	if !ok {
		return
	}
	defer give()
	release, ok := s.slot(w, r, s.clipSlots, "footage clips")
	if !ok {
		return
	}
	defer release()
	if _, ok := s.audit(w, r, "footage.view", reason, map[string]any{"camera": r.PathValue("id"), "from": from, "to": to}, nil); !ok {
		return
	}
	// The clip streams: headers go with its first segment (a range with no recording is still a
	// clean 404), and a slow client holds one segment in memory, not an hour of video. Each
	// write has clipWriteWindow: a client that stops reading lets go of its slot.
	longLived(w, 0)
	out := &progressWriter{w: w, rc: http.NewResponseController(w), window: clipWriteWindow, begin: func() {
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Disposition", `inline; filename="`+r.PathValue("id")+`.mp4"`)
	}}
	skipped, err := s.clips.WriteClip(r.Context(), r.PathValue("id"), from, to, out)
	if len(skipped) > 0 {
		s.log.Warn("footage clip skipped segments", "camera", r.PathValue("id"), "skipped", skipped)
	}
	switch {
	case errors.Is(err, footage.ErrNoFootage):
		s.writeError(w, r, errNotFound)
	case err != nil && !out.started:
		s.writeError(w, r, err)
	case err != nil: // the answer is under way: all that is left is to cut it short
		s.log.Warn("footage clip cut short", "camera", r.PathValue("id"), "err", err)
	}
}

// footageStart is GET /v1/cameras/{id}/footage/start?from&to: the time the clip GET
// .../footage?from&to would start at. A player places the clip in time with it (the clip's time
// 0 is its first frame, not from): Review keeps cameras in step with it, and holds a camera whose
// recording starts later until the others reach it. It shows no footage, so it is not audited;
// it reads one segment, so it runs in the clip slots.
func (s *Server) footageStart(w http.ResponseWriter, r *http.Request) {
	from, to, ok := s.clipRange(w, r)
	if !ok {
		return
	}
	give, ok := s.share(w, r, &s.stillOwners, stillsPerPrincipal, "stills and clip starts")
	if !ok {
		return
	}
	defer give()
	release, ok := s.slot(w, r, s.clipSlots, "footage clips")
	if !ok {
		return
	}
	defer release()
	start, err := s.clips.ClipStart(r.Context(), r.PathValue("id"), from, to)
	switch {
	case errors.Is(err, footage.ErrNoFootage):
		s.writeError(w, r, errNotFound)
	case err != nil:
		s.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"camera": r.PathValue("id"), "from": from, "start": start})
	}
}

// previewAuditEvery is how often one principal's stills of one camera are audited: a scrub
// asks for dozens a minute, and each would be an audit row, so the chain records that the
// principal looked at the camera's footage, once per this period, with the count so far.
const previewAuditEvery = 10 * time.Minute

// footagePreview is GET /v1/cameras/{id}/preview?at=: a still of the recording (the key frame at
// or before at, 320 px wide JPEG; X-Frame-Time says when it was taken), for the review timeline's
// scrubbing. Stills run in the clip slots; they are audited as footage.preview once per
// principal and camera every 10 minutes.
func (s *Server) footagePreview(w http.ResponseWriter, r *http.Request) {
	if s.preview == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	at, err := parseTime(r.URL.Query().Get("at"))
	if err != nil {
		s.writeError(w, r, badRequest("at: "+err.Error()))
		return
	}
	camera := r.PathValue("id")
	who := "anonymous"
	if p := principalOf(r); p != nil {
		who = strconv.FormatInt(p.ID, 10)
	}
	// The mask editor draws on the picture as recorded: an admin's, audited each time.
	unmasked := r.URL.Query().Get("masks") == "off"
	if p := principalOf(r); unmasked && s.auth != nil && (p == nil || p.Role != auth.RoleAdmin) {
		s.writeError(w, r, fmt.Errorf("%w: only an admin sees a still without its privacy masks", errForbidden))
		return
	}
	give, ok := s.share(w, r, &s.stillOwners, stillsPerPrincipal, "stills and clip starts")
	if !ok {
		return
	}
	defer give()
	key := who + "\x00" + camera
	s.previewMu.Lock()
	due := unmasked || time.Since(s.previewAudit[key]) >= previewAuditEvery
	if due {
		if len(s.previewAudit) > 10000 { // principals × cameras: forget the periods that ended
			for k, t := range s.previewAudit {
				if time.Since(t) >= previewAuditEvery {
					delete(s.previewAudit, k)
				}
			}
		}
		s.previewAudit[key] = time.Now()
	}
	s.previewMu.Unlock()
	if due {
		if _, ok := s.audit(w, r, "footage.preview", "", map[string]any{"camera": camera, "at": at, "for": previewAuditEvery.String(), "unmasked": unmasked}, nil); !ok {
			s.previewMu.Lock()
			delete(s.previewAudit, key)
			s.previewMu.Unlock()
			return
		}
	}
	release, ok := s.slot(w, r, s.clipSlots, "footage clips")
	if !ok {
		return
	}
	defer release()
	width := 320
	if v := r.URL.Query().Get("width"); v != "" {
		if width, err = strconv.Atoi(v); err != nil || width < 80 || width > 1280 {
			s.writeError(w, r, badRequest("width: 80 to 1280 pixels"))
			return
		}
	}
	masks, err := s.masksOf(r.Context(), camera)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if unmasked {
		masks = nil
	}
	jpg, taken, err := s.preview(r.Context(), camera, at, width, masks)
	if errors.Is(err, footage.ErrNoFootage) {
		s.writeError(w, r, errNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=3600") // recorded footage does not change
	w.Header().Set("X-Frame-Time", taken.UTC().Format(time.RFC3339Nano))
	_, _ = w.Write(jpg)
}
