// Package plates finds licence plates from what an investigator saw: the whole plate, its start
// (with or without the province character), a fragment from anywhere in it, a wildcard pattern (粤B*23*, ? for one character) or a fragment read with OCR-like mistakes.
// Fuzzy matching is a weighted edit distance in which the characters OCR confuses (0/D/Q, 8/B,
// 1/I, 2/Z, 5/S) cost little, and a query without the province character matches plates with one.
//
// The index holds the distinct plate texts seen (a site sees tens of thousands, not millions) with
// their read counts and last sighting; the events behind a plate come from the event store's
// plate index.
package plates

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Match is one plate text and how far it is from the query.
type Match struct {
	Plate    string    `json:"plate"`
	Distance float32   `json:"distance"` // 0: exact
	How      string    `json:"match"`    // exact, prefix, wildcard, fragment, fuzzy
	Reads    int       `json:"reads"`
	LastSeen time.Time `json:"last_seen"`
}

// Index is the set of distinct plates. Safe for concurrent use.
type Index struct {
	mu     sync.RWMutex
	byText map[string]int
	plates []entry
}

type entry struct {
	text  string
	runes []rune
	reads int
	last  time.Time
}

// New returns an empty index.
func New() *Index { return &Index{byText: map[string]int{}} }

// Add records reads of a plate (n reads, the newest at last).
func (x *Index) Add(text string, n int, last time.Time) {
	text = Normalise(text)
	if text == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if i, ok := x.byText[text]; ok {
		e := &x.plates[i]
		e.reads += n
		if last.After(e.last) {
			e.last = last
		}
		return
	}
	x.byText[text] = len(x.plates)
	x.plates = append(x.plates, entry{text: text, runes: []rune(text), reads: n, last: last})
}

// Len is the number of distinct plates.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.plates)
}

// Normalise upper-cases, drops separators and spaces (粤 B·12345 → 粤B12345).
func Normalise(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '*' || r == '?':
			b.WriteRune(r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// minFragment is the shortest fragment searched for inside plates (shorter ones match too many).
const minFragment = 3

// MaxFuzzy is the largest distance a fuzzy match may have: two characters missing or wrong.
const MaxFuzzy = 2.0

// Search ranks plates against q: exact first, then prefix, wildcard or fuzzy matches by distance,
// then by reads. limit bounds the answer.
func (x *Index) Search(q string, limit int) []Match {
	q = Normalise(q)
	if q == "" {
		return nil
	}
	qr := []rune(q)
	wild := strings.ContainsAny(q, "*?")
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !wild {
		if i, ok := x.byText[q]; ok && limit == 1 {
			e := x.plates[i]
			return []Match{{Plate: e.text, How: "exact", Reads: e.reads, LastSeen: e.last}}
		}
	}
	qs := newSketch(qr)
	// Scored in parallel over slices of the set.
	workers := min(runtime.GOMAXPROCS(0), max(1, len(x.plates)/20000))
	parts := make([][]Match, workers)
	var wg sync.WaitGroup
	chunk := (len(x.plates) + workers - 1) / workers
	for w := range workers {
		wg.Go(func() {
			lo, hi := w*chunk, min((w+1)*chunk, len(x.plates))
			var out []Match
			var buf dpBuf
			for i := lo; i < hi; i++ {
				e := &x.plates[i]
				var m Match
				switch {
				case wild:
					// A pattern that does not start with a province character (or a wildcard)
					// also matches plates that do: 'B12*' finds 粤B12345.
					if !glob(qr, e.runes) && !(len(e.runes) > 0 && isProvince(e.runes[0]) && !isProvince(qr[0]) && glob(qr, e.runes[1:])) {
						continue
					}
					m.How = "wildcard"
				case e.text == q:
					m.How = "exact"
				case strings.HasPrefix(e.text, q) || (len(e.runes) > 0 && isProvince(e.runes[0]) && !isProvince(qr[0]) && strings.HasPrefix(string(e.runes[1:]), q)):
					// 'B123' finds 粤B12345: a start typed without the province character.
					m.How, m.Distance = "prefix", 0.1*float32(len(e.runes)-len(qr))
				case len(qr) >= minFragment && strings.Contains(e.text, q):
					// '5L7M' finds 粤B5L7M2: a fragment from the middle, as a witness remembers it.
					m.How, m.Distance = "fragment", 0.1*float32(len(e.runes)-len(qr))+0.05
				default:
					if abs(len(e.runes)-len(qr)) > int(MaxFuzzy)+1 || !qs.near(e.runes) {
						continue
					}
					d := buf.distance(qr, e.runes)
					if d > MaxFuzzy {
						continue
					}
					m.How, m.Distance = "fuzzy", d
				}
				m.Plate, m.Reads, m.LastSeen = e.text, e.reads, e.last
				out = append(out, m)
			}
			parts[w] = out
		})
	}
	wg.Wait()
	var all []Match
	for _, p := range parts {
		all = append(all, p...)
	}
	rank := map[string]int{"exact": 0, "prefix": 1, "wildcard": 1, "fragment": 2, "fuzzy": 3}
	slices.SortFunc(all, func(a, b Match) int {
		if a.Distance != b.Distance {
			if a.Distance < b.Distance {
				return -1
			}
			return 1
		}
		if rank[a.How] != rank[b.How] {
			return rank[a.How] - rank[b.How]
		}
		if a.Reads != b.Reads {
			return b.Reads - a.Reads
		}
		return strings.Compare(a.Plate, b.Plate)
	})
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// glob matches a pattern of runes with * (any run) and ? (one character) against s.
func glob(p, s []rune) bool {
	// Iterative with backtracking to the last star: linear in practice.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// confusable maps the characters OCR mixes up to one class (0 for the rest).
var confusable = func() (t [128]byte) {
	for _, g := range []string{"0DQO", "8B", "1I", "2Z", "5S"} {
		for i := range g {
			t[g[i]] = g[0]
		}
	}
	return t
}()

func confused(a, b rune) bool {
	return a < 128 && b < 128 && confusable[a] != 0 && confusable[a] == confusable[b]
}

// Edit costs.
const (
	costConfusion = 0.3 // a character OCR commonly misreads as the other
	costProvince  = 0.2 // the query lacks the plate's leading province character
	costEdit      = 1.0 // any other missing, extra or different character
)

// sketch is a query's characters by confusion class: a plate sharing too few of them cannot be
// within MaxFuzzy, whatever the order, so the edit distance is not computed for it.
type sketch struct {
	q     []rune
	count [128]int8
	other []rune // non-ASCII (province) characters
}

func newSketch(q []rune) *sketch {
	s := &sketch{q: q}
	for _, r := range q {
		if r < 128 {
			s.count[class(r)]++
		} else {
			s.other = append(s.other, r)
		}
	}
	return s
}

func class(r rune) rune {
	if c := confusable[r]; c != 0 {
		return rune(c)
	}
	return r
}

// near reports whether plate p may be within MaxFuzzy of the query: every edit fixes at most one
// unmatched character on each side, so max(unmatched in q, unmatched in p) edits are needed.
func (s *sketch) near(p []rune) bool {
	q := s.q
	if len(p) > 0 && len(q) > 0 && isProvince(p[0]) && !isProvince(q[0]) {
		p = p[1:]
	}
	var used [128]int8
	common := 0
	for _, r := range p {
		if r < 128 {
			c := class(r)
			if used[c] < s.count[c] {
				used[c]++
				common++
			}
		} else if slices.Contains(s.other, r) {
			common++
		}
	}
	return float64(max(len(q)-common, len(p)-common))*costEdit <= MaxFuzzy
}

type dpBuf struct{ prev, cur []float32 }

// distance is the weighted edit distance from query q to plate s.
func (b *dpBuf) distance(q, s []rune) float32 {
	// A query with no province character is compared with the plate's remainder.
	extra := float32(0)
	if len(s) > 0 && len(q) > 0 && isProvince(s[0]) && !isProvince(q[0]) {
		s, extra = s[1:], costProvince
	}
	n := len(s)
	if cap(b.prev) < n+1 {
		b.prev, b.cur = make([]float32, n+1), make([]float32, n+1)
	}
	prev, cur := b.prev[:n+1], b.cur[:n+1]
	for j := range prev {
		prev[j] = float32(j) * costEdit
	}
	for i := 1; i <= len(q); i++ {
		cur[0] = float32(i) * costEdit
		rowMin := cur[0]
		for j := 1; j <= n; j++ {
			sub := prev[j-1]
			if q[i-1] != s[j-1] {
				if confused(q[i-1], s[j-1]) {
					sub += costConfusion
				} else {
					sub += costEdit
				}
			}
			cur[j] = min(sub, prev[j]+costEdit, cur[j-1]+costEdit)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin+extra > MaxFuzzy {
			return MaxFuzzy + 1 // cannot come back under the bound
		}
		prev, cur = cur, prev
	}
	return prev[n] + extra
}

// isProvince reports whether r is a Chinese plate's province (or special-use) character.
func isProvince(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF
}

// Valid reports whether a query is usable: 1–12 letters, digits, * or ?, with spaces, dots,
// dashes and middle dots allowed as separators.
func Valid(q string) bool {
	for _, r := range q {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("*? ·-.", r)) {
			return false
		}
	}
	n := utf8.RuneCountInString(Normalise(q))
	return n >= 1 && n <= 12
}
