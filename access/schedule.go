package access

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Schedule is a weekly plan of open windows in a time zone, with holidays on which only the
// "hol" windows apply.
type Schedule struct {
	loc      *time.Location
	days     [8][][2]int // minutes since midnight, [from, to); index 7 is holidays
	holidays []string    // 2006-01-02
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat", "hol"}

// ParseSchedule reads {"mon": [["06:00", "23:30"]], ...} (days sun…sat and hol), a JSON list of
// holiday dates, and an IANA time zone.
func ParseSchedule(weekly, holidays []byte, tz string) (*Schedule, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", tz, err)
	}
	var w map[string][][2]string
	if err := json.Unmarshal(weekly, &w); err != nil {
		return nil, fmt.Errorf("weekly: %w", err)
	}
	s := &Schedule{loc: loc}
	for day, windows := range w {
		i := slices.Index(dayNames, strings.ToLower(day))
		if i < 0 {
			return nil, fmt.Errorf("weekly: unknown day %q (sun, mon, … sat, hol)", day)
		}
		for _, win := range windows {
			from, err1 := minutes(win[0])
			to, err2 := minutes(win[1])
			if err1 != nil || err2 != nil || to <= from {
				return nil, fmt.Errorf("weekly: %s window %q–%q is not HH:MM to a later HH:MM (24:00 allowed)", day, win[0], win[1])
			}
			s.days[i] = append(s.days[i], [2]int{from, to})
		}
	}
	if len(holidays) > 0 {
		if err := json.Unmarshal(holidays, &s.holidays); err != nil {
			return nil, fmt.Errorf("holidays: %w", err)
		}
		for _, h := range s.holidays {
			if _, err := time.Parse(time.DateOnly, h); err != nil {
				return nil, fmt.Errorf("holiday %q: want YYYY-MM-DD", h)
			}
		}
	}
	return s, nil
}

func minutes(hhmm string) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(hhmm, "%d:%d", &h, &m); err != nil || h < 0 || h > 24 || m < 0 || m > 59 || h == 24 && m != 0 {
		return 0, fmt.Errorf("bad time %q", hhmm)
	}
	return h*60 + m, nil
}

// Open reports whether t falls in an open window.
func (s *Schedule) Open(t time.Time) bool {
	lt := t.In(s.loc)
	day := int(lt.Weekday())
	if slices.Contains(s.holidays, lt.Format(time.DateOnly)) {
		day = 7
	}
	m := lt.Hour()*60 + lt.Minute()
	for _, w := range s.days[day] {
		if m >= w[0] && m < w[1] {
			return true
		}
	}
	return false
}
