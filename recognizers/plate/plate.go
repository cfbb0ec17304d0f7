// Package plate holds the text rules of Chinese civil plates: normalising a reading and telling a
// well-formed plate for its colour. Pure Go: the API, the plate index and the readers share it.
package plate

import (
	"strings"
	"unicode"
)

// provinces are the first characters of Chinese civil plates.
const provinces = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

// Normalize keeps letters, digits and CJK characters, upper-cased: "粤B·12345" → "粤B12345".
func Normalize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// Valid reports whether text is a well-formed civil plate: a province character, a letter
// (not I or O), then 5 characters for blue and yellow plates or 6 for green new-energy plates,
// letters (not I or O) and digits. An empty colour accepts either length.
func Valid(text, colour string) bool {
	r := []rune(text)
	if len(r) < 7 || !strings.ContainsRune(provinces, r[0]) || !plateLetter(r[1]) {
		return false
	}
	rest := r[2:]
	switch colour {
	case "green":
		if len(rest) != 6 {
			return false
		}
	case "blue", "yellow":
		if len(rest) != 5 {
			return false
		}
	default:
		if len(rest) != 5 && len(rest) != 6 {
			return false
		}
	}
	for _, c := range rest {
		if !(plateLetter(c) || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func plateLetter(r rune) bool { return r >= 'A' && r <= 'Z' && r != 'I' && r != 'O' }
