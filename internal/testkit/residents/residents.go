// Package residents makes the property office's import file for a site of n residents: people,
// units in buildings, leases (most of them renters' one-year leases, some ending within 30 days),
// cards and, for one in five, a car plate. Seeded problems go on known lines, so a dry run's
// report can be checked line by line. Tests and bench/import share it.
package residents

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"time"
)

// Problem is a seeded mistake: the line it is on and the column it is in.
type Problem struct {
	Line   int
	Column string
}

// Site is a generated import file and what it holds.
type Site struct {
	CSV      []byte
	People   int
	Units    int
	Leases   int
	Cards    int
	Plates   int
	Problems []Problem // seeded, by line
	// Ending is how many leases end within 30 days of now.
	Ending int
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	given    = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉斌宇浩凯健俊帆帅旭宁婷雪琳晶欣怡佳悦梓涵子轩博文")
	province = []rune("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")
	letters  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	digits   = "0123456789"
)

// Make builds the file for n residents; with seed, five problems go on fixed lines (needs
// n ≥ 1,000): a lease that ends before it starts, a plate that is not one, a card given to two
// people, a row without a name, and a kind that does not exist.
func Make(n int, now time.Time, seed bool) Site {
	r := rand.New(rand.NewPCG(19, uint64(n)))
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"person_id", "name", "kind", "unit", "building", "unit_name", "lease_starts", "lease_ends", "card", "plate"})
	site := Site{People: n, Leases: n, Cards: n}
	unitsPer := 2.6 // residents per unit
	nUnits := int(float64(n)/unitsPer) + 1
	site.Units = nUnits
	plates := map[string]bool{}
	bad := map[int]string{}
	if seed && n >= 1000 {
		bad = map[int]string{101: "lease_ends", n / 20: "plate", n / 2: "card", n - 3: "name", n - 100: "kind"}
	}
	for i := range n {
		line := i + 2 // the header is line 1
		u := i % nUnits
		building := fmt.Sprintf("b%02d", u%30+1)
		unit := fmt.Sprintf("%s-%02d%02d", building, u/30/4+1, u/30%4+1)
		id := fmt.Sprintf("r%06d", i)
		name := string(surnames[r.IntN(len(surnames))]) + string(given[r.IntN(len(given))])
		if r.IntN(2) == 0 {
			name += string(given[r.IntN(len(given))])
		}
		// Renters' one-year leases started over the last year, so about 1 in 12 ends within a
		// month; owners' (9%) run for 70 years.
		starts := now.AddDate(0, 0, -r.IntN(365)).Truncate(24 * time.Hour)
		ends := starts.AddDate(1, 0, 0)
		if r.IntN(100) < 9 {
			ends = starts.AddDate(70, 0, 0)
		}
		if ends.Before(now.AddDate(0, 0, 30)) && ends.After(now) {
			site.Ending++
		}
		card := fmt.Sprintf("CARD-%08d", 10000000+i*7)
		plate := ""
		if r.IntN(5) == 0 {
			for plate == "" || plates[plate] {
				plate = string(province[r.IntN(len(province))]) + string(letters[r.IntN(len(letters))])
				for range 5 {
					plate += string((letters + digits + digits)[r.IntN(len(letters)+20)])
				}
			}
			plates[plate] = true
			site.Plates++
		}
		kind := "resident"
		switch bad[line] {
		case "lease_ends":
			ends = starts.AddDate(0, 0, -1)
		case "plate":
			if plate != "" {
				site.Plates--
			}
			plate = "粤B12"
		case "card":
			card = fmt.Sprintf("CARD-%08d", 10000000+7) // line 3's
		case "name":
			name = ""
		case "kind":
			kind = "tenant"
		}
		if c := bad[line]; c != "" {
			site.Problems = append(site.Problems, Problem{Line: line, Column: c})
		}
		_ = w.Write([]string{id, name, kind, unit, building, fmt.Sprintf("%s栋 %s室", building[1:], unit[4:]),
			starts.Format(time.DateOnly), ends.Format(time.DateOnly), card, plate})
	}
	w.Flush()
	site.CSV = buf.Bytes()
	return site
}
