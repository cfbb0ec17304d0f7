package api

import (
	"net/http"
	"slices"

	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/storage/events"
)

// What an event tells a role: following someone takes the search roles and a reason (tracking),
// so the event lists and streams do not hand the same out unasked. Every watch role sees that a
// resident was recognised; only the face-search roles see whom (a resident's comings and goings);
// only the plate-search roles see the plates read. Watch-list hits and alarms keep everything:
// they are the alerts the watch roles are there for.
type seeLevel int

const (
	seeAll      seeLevel = iota // admin, investigator
	seePlates                   // operator: not whom a face on the access list was
	seeNoIdents                 // patrol: nor the plates read
)

// levelOf is what the request's principal may see (everything on an open node).
func levelOf(r *http.Request) seeLevel {
	p := principalOf(r)
	switch {
	case p == nil || slices.Contains(roleSearch, p.Role):
		return seeAll
	case slices.Contains(rolePlates, p.Role):
		return seePlates
	}
	return seeNoIdents
}

// watchList reports whether list is a watch list: a hit on it is an alert (the residents' and
// access lists, events.QuietLists, open doors instead).
func watchList(list string) bool {
	return list != "" && !slices.Contains(events.QuietLists, list)
}

// redactStored blanks what the level may not see in a stored event.
func redactStored(e *events.Event, l seeLevel) {
	if l == seeAll {
		return
	}
	listed := e.List != nil && watchList(*e.List)
	if e.Kind == event.KindFace && e.List != nil && !listed {
		e.PersonID, e.PersonName, e.Distance = nil, nil, nil
	}
	if l == seeNoIdents && e.Kind == event.KindPlate && !listed {
		e.Plate, e.PersonID, e.PersonName, e.Attrs = nil, nil, nil, nil
	}
}

// redactLive blanks what the level may not see in a live event (a copy).
func redactLive(e event.Event, l seeLevel) event.Event {
	if l == seeAll {
		return e
	}
	listed := e.Match != nil && watchList(e.Match.List)
	if e.Kind == event.KindFace && e.Match != nil && !listed {
		e.Match = &event.Match{List: e.Match.List}
	}
	if l == seeNoIdents && e.Kind == event.KindPlate && !listed && e.Plate != nil {
		e.Plate = &event.PlateRead{Color: e.Plate.Color, Valid: e.Plate.Valid}
		if e.Match != nil {
			e.Match = &event.Match{List: e.Match.List}
		}
	}
	return e
}
