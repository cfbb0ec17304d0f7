package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"
)

// Store reads and writes events in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	// faceModel is the space the face-search index is built in: FaceDays, ScanFaces and
	// Embedding read only its rows.
	faceModel string

	mu    sync.Mutex
	parts map[string]bool // day partitions known to exist, "20261129"

	fenced atomic.Int64 // events refused: their node had lost the camera (unfenced)
}

// Fenced is how many events were refused because their node had lost the camera's lease.
func (s *Store) Fenced() int64 { return s.fenced.Load() }

// New returns a store on pool. Call Migrate first.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, parts: map[string]bool{}, faceModel: space.DefaultSpace.Name}
}

// UseFaceSpace makes the store's face reads (FaceDays, ScanFaces, Embedding) those of sp; call it
// before the index loads.
func (s *Store) UseFaceSpace(sp space.Space) { s.faceModel = sp.Name }

func dayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// EnsurePartitions creates the day partitions of events and faces covering every time given.
func (s *Store) EnsurePartitions(ctx context.Context, times ...time.Time) error {
	for _, t := range times {
		d := dayOf(t)
		name := d.Format("20060102")
		s.mu.Lock()
		known := s.parts[name]
		s.mu.Unlock()
		if known {
			continue
		}
		for _, table := range []string{"events", "faces"} {
			sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s_%s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
				table, name, table, d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
			if _, err := s.pool.Exec(ctx, sql); err != nil {
				var exists bool
				// Another writer may have created it between our check and our create.
				if qerr := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table+"_"+name).Scan(&exists); qerr != nil || !exists {
					return fmt.Errorf("events: partition %s_%s: %w", table, name, err)
				}
			}
		}
		s.mu.Lock()
		s.parts[name] = true
		s.mu.Unlock()
	}
	return nil
}

// EnsureAhead creates partitions for today and the next days, so the hot path never waits on DDL.
func (s *Store) EnsureAhead(ctx context.Context, now time.Time, days int) error {
	var ts []time.Time
	for i := -1; i <= days; i++ {
		ts = append(ts, now.AddDate(0, 0, i))
	}
	return s.EnsurePartitions(ctx, ts...)
}

var eventColumns = []string{"time", "id", "camera", "kind", "track", "first_seen", "frames", "person_id", "person_name",
	"list", "distance", "plate", "plate_color", "quality", "liveness", "bbox", "snapshot", "attrs"}

// Insert stores records in one transaction: COPY into temporary staging tables, then insert what
// is not there yet. A redelivered record is skipped, never duplicated. snapshotKey gives each
// record's blob key (empty when it has none).
func (s *Store) Insert(ctx context.Context, recs []*event.Event, snapshotKey func(*event.Event) string) (inserted int64, err error) {
	if recs, err = s.unfenced(ctx, recs); err != nil || len(recs) == 0 {
		return 0, err
	}
	times := make([]time.Time, len(recs))
	for i, r := range recs {
		times[i] = r.Time
	}
	if err := s.EnsurePartitions(ctx, times...); err != nil {
		return 0, err
	}
	// Rows grouped by day: COPY goes straight into each day's partition, sparing PostgreSQL the
	// per-row partition routing (a batch is almost always one day).
	type day struct{ rows, faces [][]any }
	byDay := map[string]*day{}
	var order []string
	var rows, faces [][]any
	for _, r := range recs {
		name := dayOf(r.Time).Format("20060102")
		d := byDay[name]
		if d == nil {
			d = &day{}
			byDay[name] = d
			order = append(order, name)
		}
		row := eventRow(r, snapshotKey(r))
		d.rows = append(d.rows, row)
		rows = append(rows, row)
		var face []any
		if len(r.Embedding) > 0 {
			model := r.Model
			if model == "" {
				model = space.DlibV1.Name // events from before models were named
			}
			face = []any{r.Time, r.ID, r.Camera, r.Embedding, r.Quality, model}
		}
		if face != nil {
			d.faces = append(d.faces, face)
			faces = append(faces, face)
		}
	}
	// Fast path: COPY straight into the tables. A batch that holds an event already stored (a
	// redelivery after a crash or an outage) fails on the primary key; it is then written through
	// staging tables, skipping what is there.
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		inserted = 0
		for _, name := range order {
			d := byDay[name]
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"events_" + name}, eventColumns, pgx.CopyFromRows(d.rows))
			if err != nil {
				return err
			}
			if len(d.faces) > 0 {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"faces_" + name}, faceColumns, pgx.CopyFromRows(d.faces)); err != nil {
					return err
				}
			}
			inserted += n
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "23505" { // unique_violation
		return inserted, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE events_stage (LIKE events INCLUDING DEFAULTS) ON COMMIT DROP;
			CREATE TEMP TABLE faces_stage (LIKE faces) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events_stage"}, eventColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy events: %w", err)
		}
		if len(faces) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"faces_stage"}, faceColumns, pgx.CopyFromRows(faces)); err != nil {
				return fmt.Errorf("copy faces: %w", err)
			}
		}
		cols := strings.Join(eventColumns, ", ")
		tag, err := tx.Exec(ctx, `INSERT INTO events (`+cols+`) SELECT DISTINCT ON (time, id) `+cols+` FROM events_stage ON CONFLICT (time, id) DO NOTHING`)
		if err != nil {
			return err
		}
		inserted = tag.RowsAffected()
		if len(faces) > 0 {
			_, err = tx.Exec(ctx, `INSERT INTO faces SELECT DISTINCT ON (time, event_id) * FROM faces_stage ON CONFLICT (time, event_id) DO NOTHING`)
		}
		return err
	})
	return inserted, err
}

// unfenced drops the events a node observed after it lost its camera's lease: their epoch is
// older than the camera's fence (footage.Fence) and they were seen after the fence was taken.
// After a partition, the stale node's passages are not stored beside the new holder's. What the
// old holder saw before the fence is kept, even when it arrives after: a batch in flight on a
// writer that was killed comes back only after AckWait, by when the camera has moved, and those
// passages happened.
func (s *Store) unfenced(ctx context.Context, recs []*event.Event) ([]*event.Event, error) {
	var cams []string
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Lease > 0 && !seen[r.Camera] {
			seen[r.Camera] = true
			cams = append(cams, r.Camera)
		}
	}
	if len(cams) == 0 {
		return recs, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT camera, epoch, at FROM camera_fences WHERE camera = ANY($1)`, cams)
	if err != nil {
		return nil, err
	}
	type fence struct {
		epoch uint64
		at    time.Time
	}
	fences := map[string]fence{}
	var cam string
	var epoch int64
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&cam, &epoch, &at}, func() error {
		fences[cam] = fence{uint64(epoch), at}
		return nil
	}); err != nil {
		return nil, err
	}
	out := recs[:0:0]
	for _, r := range recs {
		f, ok := fences[r.Camera]
		seenLast := r.Time
		if r.First.After(seenLast) {
			seenLast = r.First
		}
		if ok && r.Lease > 0 && r.Lease < f.epoch && !seenLast.Before(f.at) {
			s.fenced.Add(1)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

var faceColumns = []string{"time", "event_id", "camera", "embedding", "quality", "model"}

func eventRow(r *event.Event, snapshot string) []any {
	var personID, personName, list, plate, plateColor, snap *string
	var distance, liveness *float32
	if r.Liveness > 0 {
		liveness = &r.Liveness // 0: not assessed (a camera that opens no door)
	}
	if m := r.Match; m != nil {
		if m.PersonID != "" {
			personID, personName = &m.PersonID, &m.Name
		}
		list = &m.List
		if m.Distance > 0 {
			distance = &m.Distance
		}
	}
	attrs := map[string]any{}
	if r.Plate != nil {
		plate, plateColor = &r.Plate.Text, &r.Plate.Color
		attrs["plate_chars"] = r.Plate.Chars
		attrs["plate_valid"] = r.Plate.Valid
		attrs["plate_votes"] = r.Plate.Votes
	}
	if r.Alarm != nil {
		attrs["alarm"] = r.Alarm
	}
	if snapshot != "" {
		snap = &snapshot
	}
	var bbox []float32
	if !r.Box.Empty() {
		bbox = []float32{r.Box.X, r.Box.Y, r.Box.W, r.Box.H}
	}
	a, _ := json.Marshal(attrs)
	return []any{r.Time, r.ID, r.Camera, r.Kind, int64(r.Track), r.First, r.Frames, personID, personName, list, distance,
		plate, plateColor, r.Quality, liveness, bbox, snap, string(a)}
}

// Filter selects events. From and To bound the time (To exclusive).
type Filter struct {
	From, To time.Time
	Camera   string
	Kind     string
	Person   string
	Plate    string // exact, normalised
	Limit    int
	Cursor   string // from a previous page
}

// Event is a stored event as the API returns it.
type Event struct {
	ID         string          `json:"id"`
	Time       time.Time       `json:"time"`
	First      time.Time       `json:"first"`
	Camera     string          `json:"camera"`
	Kind       string          `json:"kind"`
	Track      int64           `json:"track"`
	Frames     int             `json:"frames"`
	PersonID   *string         `json:"person_id,omitempty"`
	PersonName *string         `json:"person_name,omitempty"`
	List       *string         `json:"list,omitempty"`
	Distance   *float32        `json:"distance,omitempty"`
	Plate      *string         `json:"plate,omitempty"`
	PlateColor *string         `json:"plate_color,omitempty"`
	Quality    *float32        `json:"quality,omitempty"`
	Liveness   *float32        `json:"liveness,omitempty"`
	BBox       []float32       `json:"bbox,omitempty"`
	Snapshot   *string         `json:"snapshot_key,omitempty"`
	Attrs      json.RawMessage `json:"attrs,omitempty"`
}

// ErrBadCursor means a page cursor was not made by this store.
var ErrBadCursor = errors.New("events: invalid cursor")

type cursor struct {
	T  time.Time `json:"t"`
	ID string    `json:"i"`
}

// Query returns events newest first, and a cursor for the next page ("" at the end).
func (s *Store) Query(ctx context.Context, f Filter) ([]Event, string, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	where := []string{"time >= $1", "time < $2"}
	args := []any{f.From, f.To}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Camera != "" {
		add("camera = $%d", f.Camera)
	}
	if f.Kind != "" {
		add("kind = $%d", f.Kind)
	}
	if f.Person != "" {
		add("person_id = $%d", f.Person)
	}
	if f.Plate != "" {
		add("plate = $%d", f.Plate)
	}
	if f.Cursor != "" {
		c, err := parseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		args = append(args, c.T, c.ID)
		where = append(where, fmt.Sprintf("(time, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	args = append(args, f.Limit+1)
	sql := `SELECT ` + selectColumns + ` FROM events WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY time DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, "", err
	}
	out, next := pageOf(out, f.Limit, func(e Event) cursor { return cursor{T: e.Time, ID: e.ID} })
	return out, next, nil
}

const selectColumns = `id, time, first_seen, camera, kind, track, frames, person_id, person_name, list, distance,
	plate, plate_color, quality, liveness, bbox, snapshot, attrs`

func scanEvent(row pgx.CollectableRow) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.Time, &e.First, &e.Camera, &e.Kind, &e.Track, &e.Frames, &e.PersonID, &e.PersonName,
		&e.List, &e.Distance, &e.Plate, &e.PlateColor, &e.Quality, &e.Liveness, &e.BBox, &e.Snapshot, &e.Attrs)
	return e, err
}

// ErrNotFound means no event has that id.
var ErrNotFound = errors.New("events: not found")

// Get returns one event by id, reading only the partition its id's time falls in.
func (s *Store) Get(ctx context.Context, id string) (Event, error) {
	t, ok := TimeOfID(id)
	if !ok {
		return Event{}, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM events WHERE id = $1 AND time >= $2 AND time < $3`,
		id, t.Add(-time.Second), t.Add(time.Second))
	if err != nil {
		return Event{}, err
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEvent)
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, ErrNotFound
	}
	return e, err
}

// DropBefore drops whole day partitions older than cutoff (retention) and returns their names.
func (s *Store) DropBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname IN ('events', 'faces')`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	limit := dayOf(cutoff).Format("20060102")
	var dropped []string
	for _, n := range names {
		i := strings.LastIndexByte(n, '_')
		if i < 0 || len(n[i+1:]) != 8 || n[i+1:] >= limit {
			continue
		}
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{n}.Sanitize()); err != nil {
			return dropped, err
		}
		dropped = append(dropped, n)
		s.mu.Lock()
		delete(s.parts, n[i+1:])
		s.mu.Unlock()
	}
	return dropped, nil
}
