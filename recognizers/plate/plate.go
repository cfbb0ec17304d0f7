// Package plate holds the text rules of Chinese civil plates: normalising a reading and telling a
// well-formed plate for its colour. Pure Go: the API, the plate index and the readers share it.
package plate

import (
	"strings"
	"unicode"
)

// Provinces are the first characters of Chinese civil plates.
const Provinces = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

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
// (not I or O), then 5 characters for blue and yellow plates or 6 for green new-energy plates
// (with D or F third or last), letters (not I or O) and digits. An empty colour accepts either
// length.
func Valid(text, colour string) bool {
	r := []rune(text)
	if len(r) < 7 || !strings.ContainsRune(Provinces, r[0]) || !plateLetter(r[1]) {
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
	// A new-energy plate (GA 36-2018) has D or F (electric, hybrid) third on a small vehicle's
	// plate, or last on a large one's.
	if len(rest) == 6 && !isDF(rest[0]) && !isDF(rest[5]) {
		return false
	}
	return true
}

func isDF(r rune) bool { return r == 'D' || r == 'F' }

func plateLetter(r rune) bool { return r >= 'A' && r <= 'Z' && r != 'I' && r != 'O' }

// Char is one read character and the reader's confidence in it.
type Char struct {
	Char string
	Conf float32
}

// Vote combines several readings of one plate (the frames of a passage): among the well-formed
// readings (all of them when none is), those of the most common length (ties: the more confident),
// then at each position the character with the highest summed confidence. It returns the text,
// each character with the mean confidence of the readings that had it there, and how many
// readings spell the result exactly. A misread character in one frame is outvoted by the others
// even when no two frames agree on the whole plate.
func Vote(reads [][]Char) (text string, chars []Char, agree int) {
	texts := make([]string, len(reads))
	var formed []int
	for i, r := range reads {
		var b strings.Builder
		for _, c := range r {
			b.WriteString(c.Char)
		}
		texts[i] = b.String()
		if Valid(texts[i], "") {
			formed = append(formed, i)
		}
	}
	if len(formed) == 0 {
		for i := range reads {
			if len(reads[i]) > 0 {
				formed = append(formed, i)
			}
		}
	}
	if len(formed) == 0 {
		return "", nil, 0
	}
	count, weight := map[int]int{}, map[int]float32{}
	for _, i := range formed {
		count[len(reads[i])]++
		for _, c := range reads[i] {
			weight[len(reads[i])] += c.Conf
		}
	}
	length := -1
	for l := range count {
		if length < 0 || count[l] > count[length] || count[l] == count[length] && weight[l] > weight[length] {
			length = l
		}
	}
	chars = make([]Char, length)
	var b strings.Builder
	for pos := range length {
		sum, n := map[string]float32{}, map[string]int{}
		for _, i := range formed {
			if len(reads[i]) == length {
				c := reads[i][pos]
				sum[c.Char] += c.Conf
				n[c.Char]++
			}
		}
		best := ""
		for ch, s := range sum {
			if best == "" || s > sum[best] || s == sum[best] && ch < best {
				best = ch
			}
		}
		chars[pos] = Char{Char: best, Conf: sum[best] / float32(n[best])}
		b.WriteString(best)
	}
	text = b.String()
	for _, t := range texts {
		if t == text {
			agree++
		}
	}
	return text, chars, agree
}
