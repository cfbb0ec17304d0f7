// Package space names the face embedding spaces: the model that made a vector, its length and
// metric, and the distances calibrated for it. It is cgo-free, so that access control and
// storage can hold and compare vectors without the recognizers.
package space

import (
	"fmt"
	"math"
	"strings"
)

// Embedding is a face descriptor in one Space; compare two only when they share it.
type Embedding []float32

// Distance is the Euclidean distance between two embeddings of the same space. For a cosine
// space (unit vectors) it is sqrt(2 − 2·cos): the same order as cosine similarity, so that one
// index and one matcher serve every space. Embeddings of different lengths are infinitely far.
func Distance(a, b Embedding) float32 {
	if len(a) != len(b) {
		return float32(math.Inf(1))
	}
	var s float32
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return float32(math.Sqrt(float64(s)))
}

// Space is an embedding space: the model that made a vector, its length, and the distances
// calibrated for it on the test photos (bench/faces measures them; README "Faces" quotes them).
// Vectors of two spaces are never compared.
type Space struct {
	Name   string // stored with every template and face event
	Model  string // the manifest entry of its embedder
	Dims   int
	Cosine bool // vectors are L2-normalised; Distance is sqrt(2 − 2·cos)
	// Possible is the distance under which a face may be the person: the gallery's and search's
	// outer threshold. VeryLikely is the inner band of search. Door is what a face must be under
	// to open a door, and Margin how much farther the runner-up in the door's gallery must be.
	Possible, VeryLikely, Door, Margin float32
	// DoorFMR is the pairwise false-match rate measured at Door (bench/faces): a door's
	// gallery of N people lets a stranger match someone about 1 − (1 − DoorFMR)^N of the time.
	DoorFMR float64
	// Track is the distance under which one camera's detection continues a passage (position
	// must agree too).
	Track float32
}

// Similarity turns a distance of this space into the score shown to people: cosine similarity
// for a cosine space, 1 − d/2 otherwise (both 1 for the same vector).
func (s Space) Similarity(d float32) float32 {
	if s.Cosine {
		return 1 - d*d/2
	}
	return 1 - d/2
}

// CosineDistance is the distance of a cosine space that has similarity c.
func CosineDistance(c float64) float32 { return float32(math.Sqrt(2 - 2*c)) }

// The spaces vigil knows. Intel's face-reidentification-retail-0095 is the default: on East-Asian
// faces it separates people several times better than the dlib port (shared/models/MANIFEST.md,
// bench/faces). dlib's space stays for the goface backend and as an option.
var (
	Intel0095 = Space{Name: "intel-0095", Model: "face-embedder-intel-0095", Dims: 256, Cosine: true,
		Possible: CosineDistance(0.40), VeryLikely: CosineDistance(0.55), Door: CosineDistance(0.55), Margin: 0.08, DoorFMR: 5e-5,
		Track: CosineDistance(0.15)}
	DlibV1 = Space{Name: "dlib-v1", Model: "face-embedder-dlib-v1", Dims: 128,
		Possible: 0.50, VeryLikely: 0.40, Door: 0.40, Margin: 0.04, Track: 0.6, DoorFMR: 6.3e-4}
)

// DefaultSpace is the space a new site embeds in.
var DefaultSpace = Intel0095

// Spaces lists every known space.
func Spaces() []Space { return []Space{Intel0095, DlibV1} }

// SpaceNamed finds a space by name; "" is the default.
func SpaceNamed(name string) (Space, error) {
	if name == "" {
		return DefaultSpace, nil
	}
	var names []string
	for _, s := range Spaces() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Space{}, fmt.Errorf("unknown face model %q (known: %s)", name, strings.Join(names, ", "))
}

// Check says whether e belongs to the space (its length).
func (s Space) Check(e []float32) error {
	if len(e) != s.Dims {
		return fmt.Errorf("a %s face embedding has %d values, not %d", s.Name, s.Dims, len(e))
	}
	return nil
}

// Normalize scales e to unit length in place (cosine spaces).
func Normalize(e []float32) {
	var s float64
	for _, v := range e {
		s += float64(v) * float64(v)
	}
	if s == 0 {
		return
	}
	k := float32(1 / math.Sqrt(s))
	for i := range e {
		e[i] *= k
	}
}
