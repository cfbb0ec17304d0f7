//go:build race

package pipeline

// raceEnabled: the race detector slows the Go side (decoding's glue, the motion gates) several
// times; load tests size their load to it.
const raceEnabled = true
