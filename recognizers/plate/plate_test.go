package plate

import "testing"

func TestPlateRules(t *testing.T) {
	cases := []struct {
		in, colour string
		norm       string
		valid      bool
	}{
		{"粤B·12345", "blue", "粤B12345", true},
		{"粤bd12345", "green", "粤BD12345", true},
		{"粤BD12345", "blue", "粤BD12345", false}, // 8 characters is a green plate
		{"浙A3Y6J8", "yellow", "浙A3Y6J8", true},
		{"XB12345", "blue", "XB12345", false}, // no province
		{"粤I12345", "blue", "粤I12345", false}, // I is not a plate letter
		{"粤B1234", "", "粤B1234", false},
		{"粤B12O45", "blue", "粤B12O45", false},
	}
	for _, c := range cases {
		n := Normalize(c.in)
		if n != c.norm || Valid(n, c.colour) != c.valid {
			t.Errorf("%q (%s): %q valid=%v, want %q %v", c.in, c.colour, n, Valid(n, c.colour), c.norm, c.valid)
		}
	}
}

// TestVote: per-position voting recovers a plate no two frames read whole, prefers well-formed
// readings and the common length, and counts the readings that agree.
func TestVote(t *testing.T) {
	read := func(s string, conf float32) []Char {
		var out []Char
		for _, r := range s {
			out = append(out, Char{Char: string(r), Conf: conf})
		}
		return out
	}
	for _, c := range []struct {
		reads []([]Char)
		want  string
		agree int
	}{
		{[][]Char{read("皖AF0236", 0.6), read("京AF0235", 0.9), read("京AF0Z36", 0.5)}, "京AF0236", 0}, // no frame whole, the plate by position
		{[][]Char{read("粤B12345", 0.9), read("B12345", 0.99), read("粤B12345", 0.8)}, "粤B12345", 2}, // a dropped province outvoted
		{[][]Char{read("粤BD12345", 0.9), read("粤B012345", 0.4), read("粤BD1234", 0.9)}, "粤BD12345", 1},
		{[][]Char{read("AB", 0.9)}, "AB", 1}, // nothing well formed: the best there is
		{nil, "", 0},
	} {
		text, chars, agree := Vote(c.reads)
		if text != c.want || agree != c.agree || len([]rune(text)) != len(chars) {
			t.Errorf("Vote(%v) = %q (%d agree), want %q (%d)", c.reads, text, agree, c.want, c.agree)
		}
	}
}
