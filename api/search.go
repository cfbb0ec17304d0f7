package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/storage/events"
	"github.com/vigil-oss/vigil/storage/plates"
	"github.com/vigil-oss/vigil/storage/vectors"
)

// FaceIndex is the face vector index (vectors.Index).
type FaceIndex interface {
	Search(q vectors.Query) ([]vectors.Hit, error)
	Len() int
}

// FaceEmbedder finds and embeds the faces in a photo, largest first (pipeline.Photos). An error
// about the photo itself has a BadInput method (see badInput).
type FaceEmbedder interface {
	Faces(ctx context.Context, img []byte) ([]access.FaceProbe, error)
}

// Embeddings gives a stored face event's embedding (events.Store).
type Embeddings interface {
	Embedding(ctx context.Context, eventID string) ([]float32, error)
}

// PlateEvents gives plates' events in a time range (events.Store).
type PlateEvents interface {
	PlateEvents(ctx context.Context, plates []string, from, to time.Time, camera string, perPlate int) (map[string][]events.Event, error)
}

// PlateIndex is the set of distinct plates (plates.Index).
type PlateIndex interface {
	Search(q string, limit int) []plates.Match
}

// MaxUpload bounds a search photo.
const MaxUpload = 10 << 20

var (
	errTooLarge      = errors.New("too large")
	errUnprocessable = errors.New("unprocessable")
)

// unprocessable is a 422 with a message.
type unprocessable string

func (u unprocessable) Error() string     { return string(u) }
func (u unprocessable) Is(err error) bool { return err == errUnprocessable }

// searchRange reads from/to for searches: both required, in order, at most 366 days apart.
func searchRange(get func(string) string) (time.Time, time.Time, error) {
	fv, tv := get("from"), get("to")
	if fv == "" || tv == "" {
		return time.Time{}, time.Time{}, badRequest("from and to are required (RFC 3339 or Unix seconds); searches are never unbounded")
	}
	from, err := parseTime(fv)
	if err != nil {
		return from, from, badRequest("from: " + err.Error())
	}
	to, err := parseTime(tv)
	if err != nil {
		return from, to, badRequest("to: " + err.Error())
	}
	if !to.After(from) {
		return from, to, badRequest("the time range is empty or reversed: from must be before to")
	}
	if to.Sub(from) > maxWindow {
		return from, to, badRequest("the time range is longer than 366 days; narrow it")
	}
	return from, to, nil
}

// reasonOf checks the mandatory reason of a search or export.
func reasonOf(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", badRequest("reason is required: say why (case number, incident) — it is written to the audit chain")
	case len(v) > 500:
		return "", badRequest("reason is longer than 500 characters")
	}
	return v, nil
}

func intParam(v string, def, lo, hi int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(fmt.Sprintf("%s must be a number from %d to %d", name, lo, hi))
	}
	return n, nil
}

// faceMatch is one face search result.
type faceMatch struct {
	EventID  string    `json:"event_id"`
	Camera   string    `json:"camera"`
	Time     time.Time `json:"time"`
	Distance float32   `json:"distance"`
	// Band is the calibrated confidence: "very likely" (inside the model's door-grade distance)
	// or "possible" (inside its search threshold); Score the similarity shown with it.
	Band  string  `json:"band"`
	Score float32 `json:"score"`
	// PersonID and PersonName: whom the event was matched to when it happened, if anyone.
	PersonID    string `json:"person_id,omitempty"`
	PersonName  string `json:"person_name,omitempty"`
	URL         string `json:"url"`
	SnapshotURL string `json:"snapshot_url"`
	FootageURL  string `json:"footage_url"`
}

// footageLink is the footage around an event: 5 s before to 10 s after.
func footageLink(camera string, t time.Time) string {
	return "/v1/cameras/" + url.PathEscape(camera) + "/footage?from=" + t.Add(-5*time.Second).UTC().Format(time.RFC3339) +
		"&to=" + t.Add(10*time.Second).UTC().Format(time.RFC3339)
}

// searchFaces is POST /v1/search/faces: a photo (multipart field image) or a stored face event
// (event_id), from, to, cameras (comma-separated), k (≤ 200, default 20), threshold (distance,
// default the model's "possible" distance), face (which face of a photo with several; default the largest), reason.
func (s *Server) searchFaces(w http.ResponseWriter, r *http.Request) {
	if s.faces == nil && s.relayToRole(w, r, "search") {
		return // a search node holds the index
	}
	if s.faces == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	fields, img, err := readSearchForm(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	get := func(k string) string { return fields[k] }
	reason, err := reasonOf(get("reason"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q, err := faceQuery(get, s.space())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if o := get("order"); o != "" && o != "distance" && o != "time" {
		s.writeError(w, r, badRequest("order must be distance or time"))
		return
	}
	resp := map[string]any{}
	if img != nil {
		release, ok := s.slot(w, r, s.searchSlots, "photo searches")
		if !ok {
			return
		}
		defer release()
	}
	if q.Vector, err = s.queryVector(r, img, get, resp); err != nil {
		s.writeError(w, r, err)
		return
	}
	hits, err := s.faces.Search(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sp := s.space()
	matches := make([]faceMatch, len(hits))
	bands := map[string]int{BandVeryLikely: 0, BandPossible: 0}
	for i, h := range hits {
		band := bandOf(sp, h.Distance)
		bands[band]++
		matches[i] = faceMatch{EventID: h.ID, Camera: h.Camera, Time: h.Time, Distance: h.Distance, Band: band, Score: sp.Similarity(h.Distance),
			URL: "/v1/events/" + h.ID, SnapshotURL: "/v1/events/" + h.ID + "/snapshot", FootageURL: footageLink(h.Camera, h.Time)}
	}
	resp["bands"], resp["model"] = bands, sp.Name
	query := map[string]any{"from": q.From, "to": q.To, "cameras": q.Cameras, "k": q.K, "threshold": q.MaxDistance}
	if s.store != nil && len(hits) > 0 { // whom the search found: shown with its hits, named in its audit row
		ids := make([]string, len(hits))
		for i, h := range hits {
			ids[i] = h.ID
		}
		if who, err := s.store.IdentitiesOf(r.Context(), ids, q.From, q.To); err == nil && len(who) > 0 {
			persons := map[string]string{}
			for i := range matches {
				if id, ok := who[matches[i].EventID]; ok {
					matches[i].PersonID, matches[i].PersonName = id.PersonID, id.Name
					persons[id.PersonID] = id.Name
				}
			}
			query["person_ids"], query["names"] = slices.Sorted(maps.Keys(persons)), persons
		}
	}
	// "more" says the k-th was inside the threshold too: there may be more to find with a larger
	// k or a narrower time range. The k nearest come nearest first, or in time order (order=time).
	resp["more"] = len(hits) == q.K
	if get("order") == "time" {
		slices.SortStableFunc(matches, func(a, b faceMatch) int { return a.Time.Compare(b.Time) })
	}
	if id := get("event_id"); id != "" {
		query["event_id"] = id
	} else {
		query["photo_bytes"] = len(img)
	}
	n := len(matches)
	seq, ok := s.audit(w, r, "search.faces", reason, query, &n)
	if !ok {
		return
	}
	resp["query"], resp["matches"], resp["audit_seq"] = query, matches, seq
	writeJSON(w, http.StatusOK, resp)
}

// readSearchForm reads a face search's fields and photo: multipart/form-data (a photo in the
// image field) or a JSON object (an event_id), its values as strings.
func readSearchForm(w http.ResponseWriter, r *http.Request) (map[string]string, []byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxUpload+1<<20)
	fields := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		return readPhotoForm(r)
	case "application/json":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return nil, nil, uploadError(err)
		}
		for k, v := range body {
			switch v := v.(type) {
			case string:
				fields[k] = v
			case float64:
				fields[k] = strconv.FormatFloat(v, 'f', -1, 64)
			case []any:
				var parts []string
				for _, e := range v {
					parts = append(parts, fmt.Sprint(e))
				}
				fields[k] = strings.Join(parts, ",")
			}
		}
		return fields, nil, nil
	}
	return nil, nil, badRequest("send multipart/form-data (a photo in the image field) or application/json (an event_id)")
}

// faceQuery reads a face search's range, cameras, k and threshold.
// Confidence bands of a face-search hit.
const (
	BandVeryLikely = "very likely"
	BandPossible   = "possible"
)

// bandOf is a hit's band: inside the model's VeryLikely distance (where, on the test photos,
// different East-Asian people almost never fall), or only inside its search threshold.
func bandOf(sp space.Space, d float32) string {
	if d < sp.VeryLikely {
		return BandVeryLikely
	}
	return BandPossible
}

// space is the face index's model.
func (s *Server) space() space.Space {
	if s.faceSpace.Name == "" {
		return space.DefaultSpace
	}
	return s.faceSpace
}

func faceQuery(get func(string) string, sp space.Space) (vectors.Query, error) {
	from, to, err := searchRange(get)
	if err != nil {
		return vectors.Query{}, err
	}
	k, err := intParam(get("k"), 20, 1, 200, "k")
	if err != nil {
		return vectors.Query{}, err
	}
	threshold := sp.Possible
	if v := get("threshold"); v != "" {
		f, err := strconv.ParseFloat(v, 32)
		if err != nil || f <= 0 || f > 2 {
			return vectors.Query{}, badRequest("threshold must be a distance above 0 and at most 2")
		}
		threshold = float32(f)
	}
	var cameras []string
	if v := get("cameras"); v != "" {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				cameras = append(cameras, c)
			}
		}
	}
	return vectors.Query{From: from, To: to, Cameras: cameras, K: k, MaxDistance: threshold}, nil
}

// queryVector is the face to search for: a face of the photo (resp gets the faces found and the
// one used), or a stored face event's embedding.
func (s *Server) queryVector(r *http.Request, img []byte, get func(string) string, resp map[string]any) ([]float32, error) {
	switch {
	case img != nil && get("event_id") != "":
		return nil, badRequest("send a photo or an event_id, not both")
	case img != nil:
		if s.embedder == nil {
			return nil, errNoStore
		}
		found, err := s.embedder.Faces(r.Context(), img)
		if badInput(err) {
			return nil, unprocessable("the photo cannot be read: " + err.Error())
		}
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, unprocessable("no face was found in the photo; crop closer to the face or use a sharper picture")
		}
		which, err := intParam(get("face"), 0, 0, len(found)-1, "face")
		if err != nil {
			return nil, err
		}
		resp["faces_found"] = found
		resp["face_used"] = which
		if len(found) > 1 && get("face") == "" {
			resp["note"] = fmt.Sprintf("the photo shows %d faces; searched for the largest (face 0). Send face=N to pick another.", len(found))
		}
		return found[which].Embedding, nil
	case get("event_id") != "":
		if s.embeddings == nil {
			return nil, errNoStore
		}
		vec, err := s.embeddings.Embedding(r.Context(), get("event_id"))
		if errors.Is(err, events.ErrNotFound) {
			return nil, unprocessable("event " + get("event_id") + " is not a stored face event")
		}
		return vec, err
	}
	return nil, badRequest("send a photo (multipart field image) or an event_id")
}

var errAuditUnavailable = errors.New("the audit chain cannot be written; searches are refused until it can")

// readPhotoForm reads a multipart form of short fields and one photo (field "image", at most
// MaxUpload). The caller bounds the body.
func readPhotoForm(r *http.Request) (map[string]string, []byte, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, badRequest("multipart body: " + err.Error())
	}
	fields := map[string]string{}
	var img []byte
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return fields, img, nil
		}
		if err != nil {
			return nil, nil, uploadError(err)
		}
		data, err := io.ReadAll(io.LimitReader(part, MaxUpload+1))
		if err != nil {
			return nil, nil, uploadError(err)
		}
		switch {
		case part.FormName() == "image" && len(data) > MaxUpload:
			return nil, nil, errTooLarge
		case part.FormName() == "image":
			img = data
		case len(data) > 4096:
			return nil, nil, badRequest("field " + part.FormName() + " is longer than 4096 bytes")
		default:
			fields[part.FormName()] = string(data)
		}
	}
}

// uploadError maps body read errors: too large → 413, else 400.
func uploadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: %w", errTooLarge, mbe)
	}
	return badRequest("request body: " + err.Error())
}

// plateResult is one plate and its sightings.
type plateResult struct {
	plates.Match
	Events []storedEvent `json:"events"`
}

// searchPlates is GET /v1/search/plates: q (whole plate, start, wildcard 粤B*23* with * and ?,
// or a fragment), from, to, camera, limit (plates, ≤ 50, default 10), events (per plate, ≤ 100,
// default 20), reason.
func (s *Server) searchPlates(w http.ResponseWriter, r *http.Request) {
	if s.plates == nil && s.relayToRole(w, r, "search") {
		return
	}
	if s.plates == nil || s.plateEvents == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	qv := r.URL.Query()
	reason, err := reasonOf(qv.Get("reason"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := qv.Get("q")
	if !plates.Valid(q) {
		s.writeError(w, r, badRequest("q must be 1 to 12 letters or digits, with * for any run and ? for one character"))
		return
	}
	from, to, err := searchRange(qv.Get)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := intParam(qv.Get("limit"), 10, 1, 50, "limit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	perPlate, err := intParam(qv.Get("events"), 20, 1, 100, "events")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var out []plateResult
	total := 0
	// Ranked plates first (the in-memory set), then their events in one round trip through the
	// plate + time index; plates never seen in the range are left out.
	ranked := s.plates.Search(q, 4*limit)
	names := make([]string, len(ranked))
	for i, m := range ranked {
		names[i] = m.Plate
	}
	byPlate, err := s.plateEvents.PlateEvents(r.Context(), names, from, to, qv.Get("camera"), perPlate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, m := range ranked {
		list := byPlate[m.Plate]
		if len(out) == limit {
			break
		}
		if len(list) == 0 {
			continue
		}
		res := plateResult{Match: m, Events: make([]storedEvent, len(list))}
		for i, e := range list {
			res.Events[i] = withLinks(e)
		}
		total += len(list)
		out = append(out, res)
	}
	if out == nil {
		out = []plateResult{}
	}
	seq, ok := s.audit(w, r, "search.plates", reason, map[string]any{"q": q, "from": from, "to": to, "camera": qv.Get("camera")}, &total)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"query": plates.Normalise(q), "plates": out, "audit_seq": seq})
}

// timelineStop is one appearance in a timeline.
type timelineStop struct {
	storedEvent
	Position *[2]float64 `json:"position,omitempty"` // on the site map, where the camera is placed
}

// timeline is GET /v1/search/timeline: person or plate (exact), from, to, limit (≤ 5000,
// default 1000), reason. Appearances oldest first, each with its camera's place on the site map:
// the path the person or vehicle took.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	if s.store == nil {
		s.writeError(w, r, errNoStore)
		return
	}
	qv := r.URL.Query()
	reason, err := reasonOf(qv.Get("reason"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	person, plate := qv.Get("person"), plates.Normalise(qv.Get("plate"))
	if (person == "") == (plate == "") {
		s.writeError(w, r, badRequest("give person or plate (exactly one)"))
		return
	}
	if plate != "" && (!plates.Valid(plate) || strings.ContainsAny(plate, "*?")) {
		s.writeError(w, r, badRequest("plate must be a whole plate (search with /v1/search/plates first)"))
		return
	}
	from, to, err := searchRange(qv.Get)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := intParam(qv.Get("limit"), 1000, 1, 5000, "limit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f := events.Filter{From: from, To: to, Person: person, Plate: plate, Limit: min(limit, 1000)}
	var all []events.Event
	for len(all) < limit {
		list, next, err := s.store.Query(r.Context(), f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		all = append(all, list...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(all) > limit {
		all = all[:limit]
	}
	slices.Reverse(all) // oldest first
	stops := make([]timelineStop, len(all))
	var path []string
	at := map[string]*[2]float64{}
	for i, e := range all {
		stops[i] = timelineStop{storedEvent: withLinks(e)}
		p, seen := at[e.Camera]
		if !seen {
			p, err = s.cameraAt(r, e.Camera)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			at[e.Camera] = p
		}
		stops[i].Position = p
		if len(path) == 0 || path[len(path)-1] != e.Camera {
			path = append(path, e.Camera)
		}
	}
	n := len(stops)
	seq, ok := s.audit(w, r, "search.timeline", reason, map[string]any{"person": person, "plate": plate, "from": from, "to": to}, &n)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"person": person, "plate": plate, "appearances": stops, "cameras_in_order": path, "audit_seq": seq})
}
