// Package strangers clusters the faces that matched no one into anonymous identities with
// stable ids (S000123), incrementally over the face index, so that a repeat stranger is one
// identity across cameras, days and restarts; raises the site's stranger rules (seen at night on
// several days, trying a door again and again); and lets an investigator promote a stranger to a
// watch-list entry, merge two, or split one. Pure Go over PostgreSQL.
package strangers

import (
	"math"

	"github.com/vigil-oss/vigil/internal/core/space"
)

// Index is the strangers' centroids in memory: a face joins the nearest within the join distance.
type Index struct {
	join     float32
	clusters map[string]*cluster
}

type cluster struct {
	c []float32
	n int
}

// NewIndex returns an empty index that joins faces nearer than join to a centroid.
func NewIndex(join float32) *Index { return &Index{join: join, clusters: map[string]*cluster{}} }

// Len is how many strangers the index holds.
func (ix *Index) Len() int { return len(ix.clusters) }

// Put sets a stranger's centroid and face count (as loaded).
func (ix *Index) Put(id string, centroid []float32, n int) {
	ix.clusters[id] = &cluster{c: centroid, n: n}
}

// Drop forgets a stranger (merged into another).
func (ix *Index) Drop(id string) { delete(ix.clusters, id) }

// Nearest is the stranger whose centroid is nearest e, and the distance ("" when none).
func (ix *Index) Nearest(e []float32) (string, float32) {
	best, bd := "", float32(math.MaxFloat32)
	for id, c := range ix.clusters {
		if len(c.c) != len(e) {
			continue
		}
		if d := space.Distance(c.c, e); d < bd {
			best, bd = id, d
		}
	}
	return best, bd
}

// Assign finds e's stranger: the nearest within the join distance (its centroid moves to the
// mean of its faces, kept at unit length), else none (the caller makes a new one and Puts it).
// It returns the stranger, the distance and the new centroid.
func (ix *Index) Assign(e []float32) (id string, d float32, centroid []float32) {
	id, d = ix.Nearest(e)
	if id == "" || d >= ix.join {
		return "", d, nil
	}
	c := ix.clusters[id]
	next := make([]float32, len(e))
	for i := range e {
		next[i] = (c.c[i]*float32(c.n) + e[i]) / float32(c.n+1)
	}
	space.Normalize(next)
	c.c, c.n = next, c.n+1
	return id, d, next
}

// Centroid is the unit-length mean of faces.
func Centroid(faces [][]float32) []float32 {
	if len(faces) == 0 {
		return nil
	}
	out := make([]float32, len(faces[0]))
	for _, f := range faces {
		for i := range out {
			out[i] += f[i]
		}
	}
	space.Normalize(out)
	return out
}

// DefaultJoin is the join distance for a space: its VeryLikely band (stricter than the gallery's
// Possible threshold: a stranger id must not mix two people, measured in
// TestClusterPurityOnPhotos).
func DefaultJoin(sp space.Space) float32 { return sp.VeryLikely }
