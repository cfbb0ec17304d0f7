package vectors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// A sealed day's snapshot (Dir/DAY.idx): everything but the float32 vectors (Dir/DAY.vec), so
// that a restarted node reads back 157 bytes a vector instead of an embedding per row from
// PostgreSQL. Little-endian: magic, dim, rows, lists, the day's camera names, then the arrays.

var snapshotMagic = [8]byte{'V', 'G', 'I', 'X', 0, 0, 0, 1}

// writeSnapshot writes a sealed partition's snapshot. Call with x.mu held.
func (x *Index) writeSnapshot(p *part) error {
	path := snapshotPath(p.cold.path)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// The day's cameras, numbered locally: the index's own numbers depend on load order.
	local, names := map[uint16]uint16{}, []string{}
	cams := make([]uint16, len(p.cams))
	for i, c := range p.cams {
		l, ok := local[c]
		if !ok {
			l = uint16(len(names))
			local[c] = l
			names = append(names, x.camNames[c])
		}
		cams[i] = l
	}
	put := func(v any) {
		if err == nil {
			err = binary.Write(w, binary.LittleEndian, v)
		}
	}
	put(snapshotMagic)
	put([4]uint32{uint32(p.dim), uint32(len(p.ids)), uint32(p.ivf.nlist), uint32(len(names))})
	for _, n := range names {
		put(uint16(len(n)))
		put([]byte(n))
	}
	put(p.ids)
	put(p.times)
	put(cams)
	put(p.norm2)
	put(p.cold.scale4)
	put(p.cold.byID)
	put(p.cold.q4)
	put(p.ivf.centroids)
	put(p.ivf.offsets)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path + ".tmp")
		return err
	}
	return os.Rename(path+".tmp", path)
}

// ErrSnapshot means a snapshot file is not one this index can use (another model's, or torn).
var ErrSnapshot = errors.New("vectors: unusable snapshot")

// LoadSnapshot adds the sealed day t from its snapshot and vector file under Options.Dir, when
// they exist and hold exactly rows vectors (the count PostgreSQL has for the day: a day changed
// since, by an erasure or late rows, is read from PostgreSQL instead). It reports whether it
// loaded.
func (x *Index) LoadSnapshot(t time.Time, rows int) (bool, error) {
	if x.opts.Dir == "" {
		return false, nil
	}
	day := dayOf(t.UnixMilli())
	vecPath := filepath.Join(x.opts.Dir, fmt.Sprintf("%d.vec", day))
	f, err := os.Open(snapshotPath(vecPath))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	p, names, err := readSnapshot(bufio.NewReaderSize(f, 1<<20), x.dim, day)
	if err != nil || len(p.ids) != rows {
		return false, err
	}
	vf, err := os.Open(vecPath)
	if err != nil {
		return false, nil
	}
	if st, err := vf.Stat(); err != nil || st.Size() != int64(rows)*int64(x.dim)*4 {
		vf.Close()
		return false, nil
	}
	p.cold.f, p.cold.path = vf, vecPath
	x.mu.Lock()
	defer x.mu.Unlock()
	if old := x.parts[day]; old != nil && len(old.ids) > 0 {
		vf.Close()
		return false, nil // rows came from the bus meanwhile: PostgreSQL is read instead
	}
	for i, c := range p.cams {
		id, err := x.camera(names[c])
		if err != nil {
			vf.Close()
			return false, err
		}
		p.cams[i] = id
	}
	x.parts[day] = p
	x.n += len(p.ids)
	return true, nil
}

func readSnapshot(r io.Reader, dim int, day int32) (*part, []string, error) {
	var err error
	get := func(v any) {
		if err == nil {
			err = binary.Read(r, binary.LittleEndian, v)
		}
	}
	var magic [8]byte
	var head [4]uint32
	get(&magic)
	get(&head)
	if err != nil || magic != snapshotMagic || int(head[0]) != dim || head[1] > 1<<26 || head[2] > 1<<16 || head[3] > 1<<16 {
		return nil, nil, fmt.Errorf("%w: header", ErrSnapshot)
	}
	n, nlist := int(head[1]), int(head[2])
	names := make([]string, head[3])
	for i := range names {
		var l uint16
		get(&l)
		b := make([]byte, l)
		get(b)
		names[i] = string(b)
	}
	p := &part{day: day, dim: dim, ids: make([][11]byte, n), times: make([]int64, n), cams: make([]uint16, n), norm2: make([]float32, n),
		cold: &cold{scale4: make([]float32, n), byID: make([]int32, n), q4: make([]byte, n*dim/2)},
		ivf:  &ivf{nlist: nlist, centroids: make([]float32, nlist*dim), offsets: make([]int32, nlist+1)}, tailAt: n}
	get(p.ids)
	get(p.times)
	get(p.cams)
	get(p.norm2)
	get(p.cold.scale4)
	get(p.cold.byID)
	get(p.cold.q4)
	get(p.ivf.centroids)
	get(p.ivf.offsets)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	for _, c := range p.cams {
		if int(c) >= len(names) {
			return nil, nil, fmt.Errorf("%w: camera", ErrSnapshot)
		}
	}
	return p, names, nil
}
