package cluster

import (
	"fmt"
	"testing"
)

// TestPreferMovesAboutOneNth: rendezvous placement spreads cameras evenly over the nodes, by
// capacity, and a node joining takes about 1/N of them while no camera moves between the others.
func TestPreferMovesAboutOneNth(t *testing.T) {
	nodes := []Node{{ID: "a", Capacity: 1}, {ID: "b", Capacity: 1}, {ID: "c", Capacity: 1}}
	const n = 1231
	before := map[string]string{}
	count := map[string]int{}
	for i := range n {
		cam := fmt.Sprintf("cam%04d", i)
		before[cam] = Prefer(cam, nodes)
		count[before[cam]]++
	}
	for _, nd := range nodes {
		if c := count[nd.ID]; c < n/3-80 || c > n/3+80 {
			t.Errorf("node %s gets %d of %d cameras", nd.ID, c, n)
		}
	}
	nodes = append(nodes, Node{ID: "d", Capacity: 2}) // twice the capacity: 2/5 of the cameras
	moved, wrong := 0, 0
	for cam, was := range before {
		now := Prefer(cam, nodes)
		if now != was {
			moved++
			if now != "d" {
				wrong++
			}
		}
	}
	if wrong != 0 || moved < n*2/5-80 || moved > n*2/5+80 {
		t.Errorf("a node of capacity 2 joining moved %d of %d cameras (%d between the old nodes)", moved, n, wrong)
	}
}
