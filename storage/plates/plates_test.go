package plates

import (
	"math/rand/v2"
	"testing"
	"time"
)

// synthetic makes n distinct plausible Chinese plates.
func synthetic(rng *rand.Rand, n int) []string {
	provinces := []rune("京沪粤苏浙川鄂湘闽鲁豫冀")
	letters := []rune("ABCDEFGHJKLMNPQRSTUVWXYZ")
	digits := []rune("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		r := []rune{provinces[rng.IntN(len(provinces))], letters[rng.IntN(len(letters))]}
		for range 5 {
			r = append(r, digits[rng.IntN(len(digits))])
		}
		if s := string(r); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func TestExactPrefixWildcard(t *testing.T) {
	x := New()
	now := time.Now()
	for _, p := range []string{"粤B12345", "粤B12346", "粤B99999", "京A12345", "粤B1234"} {
		x.Add(p, 1, now)
	}
	x.Add("粤 b·12345", 2, now) // same plate, other spelling
	if x.Len() != 5 {
		t.Fatalf("%d plates", x.Len())
	}
	got := x.Search("粤B12345", 10)
	if got[0].Plate != "粤B12345" || got[0].How != "exact" || got[0].Reads != 3 {
		t.Fatalf("exact: %+v", got)
	}
	pre := x.Search("粤B123", 10)
	if len(pre) < 3 || pre[0].Plate != "粤B1234" || pre[0].How != "prefix" {
		t.Fatalf("prefix: %+v", pre)
	}
	w := x.Search("粤B*34?", 10)
	if len(w) != 2 {
		t.Fatalf("wildcard 粤B*34?: %+v", w)
	}
	for _, m := range w {
		if m.How != "wildcard" || (m.Plate != "粤B12345" && m.Plate != "粤B12346") {
			t.Fatalf("wildcard: %+v", m)
		}
	}
	if w := x.Search("B99*", 10); len(w) != 1 || w[0].Plate != "粤B99999" {
		t.Fatalf("B99* without the province: %+v", w)
	}
	if w := x.Search("*99*", 10); len(w) != 1 || w[0].Plate != "粤B99999" {
		t.Fatalf("*99*: %+v", w)
	}
	if w := x.Search("*", 10); len(w) != 5 {
		t.Fatalf("*: %d", len(w))
	}
	// The search field's own example: a start without the province character (issue 18).
	if b := x.Search("B123", 10); len(b) != 3 || b[0].Plate != "粤B1234" || b[0].How != "prefix" {
		t.Fatalf("B123: %+v", b)
	}
	// A fragment from the middle, as a witness remembers it.
	x.Add("粤B5L7M2", 1, now)
	if f := x.Search("5L7M", 10); len(f) == 0 || f[0].Plate != "粤B5L7M2" || f[0].How != "fragment" {
		t.Fatalf("5L7M: %+v", f)
	}
	if f := x.Search("3", 10); len(f) != 0 {
		t.Fatalf("a one-character fragment matched: %+v", f)
	}
}

// The accuracy checks: a plate is found from any 5 of its 7 characters and from each
// single-character OCR confusion, among 5,000 other plates.
func TestFuzzyFindsFragmentsAndConfusions(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	plates := synthetic(rng, 5000)
	x := New()
	now := time.Now()
	for _, p := range plates {
		x.Add(p, 1, now)
	}
	swap := map[rune][]rune{'0': []rune("DQ"), 'D': []rune("0"), 'Q': []rune("0"), '8': []rune("B"), 'B': []rune("8"), '1': []rune("I"), '2': []rune("Z"), 'Z': []rune("2"), '5': []rune("S"), 'S': []rune("5")}
	found := func(q, want string) bool {
		for _, m := range x.Search(q, 20) {
			if m.Plate == want {
				return true
			}
		}
		return false
	}
	subsets, confusions := 0, 0
	for _, p := range plates[:15] {
		r := []rune(p)
		// Every way of keeping 5 of the 7 characters.
		for i := 0; i < 7; i++ {
			for j := i + 1; j < 7; j++ {
				var q []rune
				for k, c := range r {
					if k != i && k != j {
						q = append(q, c)
					}
				}
				subsets++
				if !found(string(q), p) {
					t.Fatalf("%s not found from the 5 characters %s", p, string(q))
				}
			}
		}
		for k, c := range r {
			for _, alt := range swap[c] {
				q := append([]rune(nil), r...)
				q[k] = alt
				confusions++
				got := x.Search(string(q), 20)
				if len(got) == 0 || got[0].Plate != p && got[0].Distance == 0 {
					t.Fatalf("%s (one OCR confusion of %s): %+v", string(q), p, got)
				}
				if !found(string(q), p) {
					t.Fatalf("%s not found from %s", p, string(q))
				}
			}
		}
		if got := x.Search(string(r[1:]), 5); len(got) == 0 || got[0].Plate != p {
			t.Fatalf("without its province, %s ranks %+v", p, got)
		}
	}
	t.Logf("%d five-character fragments and %d single confusions found among %d plates", subsets, confusions, len(plates))
	if confusions == 0 {
		t.Fatal("no confusable characters in the sample")
	}
}

func TestValidAndNormalise(t *testing.T) {
	for q, want := range map[string]bool{"粤B12345": true, "粤 B·123": true, "*23*": true, "": false, "'; DROP TABLE events;--": false, "粤B12345678901": false, "a%b": false} {
		if Valid(q) != want {
			t.Errorf("Valid(%q) = %v", q, !want)
		}
	}
	if n := Normalise(" 粤b-12 345 "); n != "粤B12345" {
		t.Fatalf("normalise: %q", n)
	}
}

func BenchmarkFuzzy200k(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := New()
	for _, p := range synthetic(rng, 200000) {
		x.Add(p, 1, time.Now())
	}
	for b.Loop() {
		x.Search("B1Z34", 20)
	}
}
