package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// buckets name where a CPU sample's time goes: the first bucket (in this order) with a frame
// anywhere on the sample's stack that matches.
var buckets = []struct{ name, match string }{
	{"decode (main stream, shots)", "pipeline.(*shots)"},
	{"decode (sub-stream key frames)", "streams/decode."},
	{"motion gate", "pipeline.thumbnail"},
	{"motion gate", "pipeline.regions"},
	{"face detection", "dnn.(*Detector)"},
	{"embedding, liveness, quality", "dnn.(*Embedder)"},
	{"embedding, liveness, quality", "dnn.(*Liveness)"},
	{"embedding, liveness, quality", "recognizers.Assess"},
	{"plates", "dnn.(*Plates)"},
	{"crops, frame copies", "pipeline.cropOf"},
	{"crops, frame copies", "pipeline.(*Pool).process"},
	{"crops, frame copies", "pipeline.(*analyser).ingest"},
	{"tracking, matching", "pipeline.(*Tracker)"},
	{"tracking, matching", "pipeline.(*Gallery)"},
	{"events, bus", "nats"},
	{"events, bus", "pipeline.(*Pipeline).publish"},
	{"RTSP ingest", "gortsplib"},
	{"RTSP ingest", "streams.(*Depacketizer)"},
	{"RTSP ingest", "streams/rtsp"},
	{"RTSP ingest", "streams.(*Stream)"},
	{"RTSP ingest", "streams.(*Reader)"},
}

// printProfile sums the window's CPU profile into buckets, and prints the floor it gives and
// the ceiling on this machine against today's configuration's largest N (0: not run).
func (r *result) printProfile(path string, today int) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Println("profile:", err)
		return
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		fmt.Println("profile:", err)
		return
	}
	sums := map[string]int64{}
	var total int64
	idx := len(p.SampleType) - 1 // cpu nanoseconds
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		sums[bucketOf(s)] += v
	}
	type kv struct {
		k string
		v int64
	}
	var list []kv
	for k, v := range sums {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v })
	cores := float64(total) / r.window.Seconds() / 1e9
	fmt.Printf("where the time goes at %d cameras (sub-streams), %.2f cores in all:\n", r.n, cores)
	for _, e := range list {
		fmt.Printf("  %-32s %5.1f%%  %.3f cores  %.3f%% of a core per camera\n", e.k, 100*float64(e.v)/float64(total),
			float64(e.v)/r.window.Seconds()/1e9, 100*float64(e.v)/r.window.Seconds()/1e9/float64(r.n))
	}
	need, ingest := 0.0, 0.0
	for _, e := range list {
		cores := float64(e.v) / r.window.Seconds() / 1e9
		switch {
		case strings.HasPrefix(e.k, "decode"), e.k == "face detection", e.k == "embedding, liveness, quality", e.k == "plates":
			need += cores
		case e.k == "RTSP ingest":
			ingest = cores
		}
	}
	fmt.Printf("physical floor for this mix: key-frame decodes of the sub-streams, shots decoded from the main streams and the models on frames with motion take %.2f cores for %d cameras: %.0f cameras on the node's 2 cores if nothing else cost\n",
		need, r.n, 2*float64(r.n)/max(need, 1e-9))
	r.printCeiling(need, ingest, today)
}

// printCeiling prints how many cameras this machine could analyse at most with the floor's
// work per camera, once the work no change to the analysis removes is added: reading the
// cameras' packets (RTSP ingest, both streams) and camsim's own share of the same two cores
// (the cameras are a process on this machine). It is what the 10× is measured against.
func (r *result) printCeiling(need, ingest float64, today int) {
	n := float64(r.n)
	per, ceiling := ceilingOf(need, ingest, r.camsimCPU, r.n)
	fmt.Printf("ceiling on this machine: the floor (%.3f%% of a core a camera), RTSP ingest (%.3f%%) and camsim's own share (%.3f%%) make %.3f%% a camera: %.0f cameras on the 2 cores at 100%% busy",
		100*need/n, 100*ingest/n, 100*r.camsimCPU/n, 100*per, ceiling)
	if today > 0 {
		goal := 10 * float64(today)
		fmt.Printf(", %.1f× today's %d; 10× (%d cameras) needs at most %.3f%% a camera in all, %.3f%% for vigil's decodes and models after ingest and camsim",
			ceiling/float64(today), today, 10*today, 100*2/goal, 100*(2/goal-(ingest+r.camsimCPU)/n))
	}
	fmt.Println()
}

func bucketOf(s *profile.Sample) string {
	for _, b := range buckets {
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && strings.Contains(l.Function.Name, b.match) {
					return b.name
				}
			}
		}
	}
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil && strings.HasPrefix(l.Function.Name, "runtime.") {
				return "Go runtime (GC, scheduler)"
			}
		}
	}
	return "other"
}

// ceilingOf is the cores a camera takes (the floor's work, ingest and camsim's share, in cores
// for n cameras) and the cameras that fill the node's two cores at that rate.
func ceilingOf(need, ingest, camsim float64, n int) (perCamera, cameras float64) {
	perCamera = (need + ingest + camsim) / float64(max(n, 1))
	return perCamera, 2 / max(perCamera, 1e-9)
}
