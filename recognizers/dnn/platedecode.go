package dnn

import (
	"math"
	"strings"

	"github.com/vigil-oss/vigil/recognizers/plate"
)

// The plate reader is a general Chinese text recogniser (PP-OCRv4, 6,623 characters). Read
// greedily it drops or invents a province, reads a letter where a digit goes, a Q as 0. A plate
// is not free text: a province, a letter, then five or six letters (never I or O) and digits.
// Decoding the recogniser's output under that grammar (the best CTC path that spells a plate)
// recovers most of those reads, and when the greedy read is already a plate the two agree.

// plateGrammar is the characters allowed at each position of a plate line (class indices into
// the recogniser's output; 0 is the CTC blank) and the lengths the line may have.
type plateGrammar struct {
	pos     [][]int // allowed classes at each position
	lengths []int
	check   func(text string) bool // whether a text spells such a line
}

// fits reports whether text spells a line of g.
func (g plateGrammar) fits(text string) bool { return g.check(text) }

// grammars are the lines the reader decodes: a single-row plate, and a double-row plate's top
// (province, letter) and bottom (five letters and digits) rows.
type grammars struct {
	single      []plateGrammar // seven, then green's
	seven       plateGrammar   // blue and yellow plates
	green       []plateGrammar // a small and a large new-energy plate's eight
	top, bottom plateGrammar
}

// newGrammars builds the grammars over the recogniser's keys (keys[i] is class i+1).
func newGrammars(keys []string) grammars {
	index := map[string]int{}
	for i, k := range keys {
		if _, ok := index[k]; !ok {
			index[k] = i + 1
		}
	}
	classes := func(chars string) []int {
		var out []int
		for _, r := range chars {
			if c, ok := index[string(r)]; ok {
				out = append(out, c)
			}
		}
		return out
	}
	prov := classes(plate.Provinces)
	letters := classes("ABCDEFGHJKLMNPQRSTUVWXYZ")
	alnum := classes("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
	rest := func(n int) [][]int {
		out := make([][]int, n)
		for i := range out {
			out[i] = alnum
		}
		return out
	}
	in := func(set string) func(rune) bool { return func(r rune) bool { return strings.ContainsRune(set, r) } }
	line := func(text string, each ...func(rune) bool) bool {
		rs := []rune(text)
		if len(rs) != len(each) {
			return false
		}
		for i, r := range rs {
			if !each[i](r) {
				return false
			}
		}
		return true
	}
	isLetter, isAlnum := in("ABCDEFGHJKLMNPQRSTUVWXYZ"), in("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
	df := classes("DF")
	seven := plateGrammar{pos: append([][]int{prov, letters}, rest(5)...), lengths: []int{7}, check: func(s string) bool { return plate.Valid(s, "blue") }}
	green := []plateGrammar{
		{pos: append([][]int{prov, letters, df}, rest(5)...), lengths: []int{8}, check: func(s string) bool { return plate.Valid(s, "green") }},
		{pos: append(append([][]int{prov, letters}, rest(5)...), df), lengths: []int{8}, check: func(s string) bool { return plate.Valid(s, "green") }},
	}
	return grammars{
		single: append([]plateGrammar{seven}, green...),
		seven:  seven,
		green:  green,
		top:    plateGrammar{pos: [][]int{prov, letters}, lengths: []int{2}, check: func(s string) bool { return line(s, in(plate.Provinces), isLetter) }},
		bottom: plateGrammar{pos: rest(5), lengths: []int{5}, check: func(s string) bool { return line(s, isAlnum, isAlnum, isAlnum, isAlnum, isAlnum) }},
	}
}

// decodeGrammar finds the most probable CTC path through probs (T rows of classes
// probabilities) that spells a line of g, and returns its characters with the probability at
// which each was read (the best of its run). ok is false when no path fits (too few steps).
func decodeGrammar(probs []float32, classes int, g plateGrammar, keys []string) (text string, chars []CharConf, logp float64, ok bool) {
	T := len(probs) / classes
	K := len(g.pos)
	if T == 0 || K == 0 {
		return "", nil, 0, false
	}
	neg := math.Inf(-1)
	lp := func(t, c int) float64 { return math.Log(float64(probs[t*classes+c]) + 1e-12) }
	// State (k, j): k characters emitted, the k-th is g.pos[k-1][j-1] and the path is on it;
	// j = 0: on a blank after k characters. back[t][k][j] is the predecessor at t-1.
	width := 1
	for _, p := range g.pos {
		width = max(width, len(p)+1)
	}
	score := make([][]float64, K+1)
	next := make([][]float64, K+1)
	for k := range score {
		score[k], next[k] = make([]float64, width), make([]float64, width)
		for j := range score[k] {
			score[k][j] = neg
		}
	}
	score[0][0] = 0 // on a blank before anything
	back := make([][][]ptr, T)
	for t := range T {
		back[t] = make([][]ptr, K+1)
		blank := lp(t, 0)
		for k := 0; k <= K; k++ {
			back[t][k] = make([]ptr, width)
			for j := range next[k] {
				next[k][j] = neg
			}
			// On a blank after k characters: from the blank, or from the k-th character.
			bestK, bestJ := k, 0
			best := score[k][0]
			n := 0
			if k > 0 {
				n = len(g.pos[k-1])
			}
			for j := 1; j <= n; j++ {
				if score[k][j] > best {
					best, bestJ = score[k][j], j
				}
			}
			if best > neg {
				next[k][0] = best + blank
				back[t][k][0] = ptr{int16(bestK), int16(bestJ)}
			}
			if k == 0 {
				continue
			}
			// On the k-th character c: staying on it, or entering it from a blank after k-1
			// characters or from a different (k-1)-th character.
			prev := g.pos[k-1]
			var pn int
			if k > 1 {
				pn = len(g.pos[k-2])
			}
			// The best two predecessors among the (k-1)-th characters, for "a different one".
			b1, b1j, b2, b2j := neg, 0, neg, 0
			for j := 1; j <= pn; j++ {
				s := score[k-1][j]
				switch {
				case s > b1:
					b2, b2j, b1, b1j = b1, b1j, s, j
				case s > b2:
					b2, b2j = s, j
				}
			}
			for j, c := range prev {
				cur := j + 1
				from, fk, fj := score[k][cur], k, cur // staying
				if s := score[k-1][0]; s > from {
					from, fk, fj = s, k-1, 0
				}
				// The (k-1)-th character, unless it is the same class (CTC needs a blank between).
				if b1j != 0 && (k < 2 || g.pos[k-2][b1j-1] != c) && b1 > from {
					from, fk, fj = b1, k-1, b1j
				} else if b2j != 0 && (k < 2 || g.pos[k-2][b2j-1] != c) && b2 > from {
					from, fk, fj = b2, k-1, b2j
				}
				if from > neg {
					next[k][cur] = from + lp(t, c)
					back[t][k][cur] = ptr{int16(fk), int16(fj)}
				}
			}
		}
		score, next = next, score
	}
	// The best end among the allowed lengths.
	bestS, bk, bj := neg, -1, 0
	for _, L := range g.lengths {
		if L > K {
			continue
		}
		n := len(g.pos[L-1])
		for j := 0; j <= n; j++ {
			if score[L][j] > bestS {
				bestS, bk, bj = score[L][j], L, j
			}
		}
	}
	if bk < 0 || bestS == neg {
		return "", nil, 0, false
	}
	text, chars = walkBack(back, probs, classes, g, keys, bk, bj)
	return text, chars, bestS, true
}

// ptr is a decoding state: k characters emitted, on the k-th's class j (0: on a blank).
type ptr struct{ k, j int16 }

// walkBack follows the predecessors from the end state (k, j), collecting each character with
// its best probability along its run.
func walkBack(back [][][]ptr, probs []float32, classes int, g plateGrammar, keys []string, k, j int) (string, []CharConf) {
	out := make([]CharConf, k)
	for t := len(back) - 1; t >= 0; t-- {
		if j > 0 {
			c := g.pos[k-1][j-1]
			p := probs[t*classes+c]
			if out[k-1].Char == "" || p > out[k-1].Conf {
				out[k-1] = CharConf{Char: keys[c-1], Conf: p}
			}
		}
		p := back[t][k][j]
		k, j = int(p.k), int(p.j)
	}
	var sb strings.Builder
	for _, c := range out {
		sb.WriteString(c.Char)
	}
	return sb.String(), out
}

// decodeBest decodes probs under each grammar and keeps the most probable line.
func decodeBest(probs []float32, classes int, gs []plateGrammar, keys []string) (text string, chars []CharConf, ok bool) {
	best := math.Inf(-1)
	for _, g := range gs {
		if t, cs, lp, fits := decodeGrammar(probs, classes, g, keys); fits && lp > best {
			text, chars, best, ok = t, cs, lp, true
		}
	}
	return text, chars, ok
}
