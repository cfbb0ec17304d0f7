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
