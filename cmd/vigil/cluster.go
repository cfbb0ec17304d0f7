package main

import (
	"context"
	"encoding/json"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/cameras"
	"github.com/vigil-oss/vigil/cluster"
	"github.com/vigil-oss/vigil/internal/core/lifecycle"
)

// clusterComponent announces this node among the site's nodes (JetStream KV, renewed every 2 s)
// and removes it at a planned stop; a single node is a cluster of one.
func (n *node) clusterComponent() lifecycle.Component {
	var unshare func()
	return lifecycle.Component{Name: "cluster", Start: func(ctx context.Context) (err error) {
		advertise := n.cfg.Cluster.Advertise
		if advertise == "" {
			advertise = "http://" + n.ln.Addr().String()
		}
		self := cluster.Node{ID: n.cfg.Cluster.Node, Advertise: advertise, Capacity: n.cfg.Cluster.Capacity, Version: version, Roles: n.cfg.Cluster.Roles}
		n.members, err = cluster.Join(ctx, n.bus.JetStream(), n.clusterStore(), self, func() (int, []byte) {
			// Every node answers GET /v1/cameras for the whole site from these.
			n.running.mu.Lock()
			pool, running := n.cameras, len(n.running.cams)
			n.running.mu.Unlock()
			if pool == nil {
				return running, nil
			}
			var list []cameras.State
			for _, st := range pool.Statuses() {
				list = append(list, cameras.State{Status: st, Analysis: n.analysis(st.ID)})
			}
			states, _ := json.Marshal(list)
			return running, states
		}, n.log)
		if err != nil {
			return err
		}
		if n.nonces, err = cluster.OpenNonces(ctx, n.bus.JetStream(), n.clusterStore(), 2*access.SkewWindow); err != nil {
			return err
		}
		if n.engine != nil {
			// Doors across nodes: unlocks reach a controller on any node, once; anti-passback
			// and waiting second factors are the same everywhere.
			unshare, err = n.engine.Share(access.Peers{Self: self.ID, Publish: n.bus.Broadcast, Subscribe: n.bus.Subscribe,
				Claim: n.nonces.Claim, Log: n.log})
		}
		return err
	}, Stop: func() {
		if unshare != nil {
			unshare()
		}
		n.members.Leave()
	}}
}

// handoverComponent starts nothing; as the node stops it hands its cameras to the other nodes
// first (before the cameras' sessions close), so a planned restart loses no footage.
func (n *node) handoverComponent() lifecycle.Component {
	return lifecycle.Component{Name: "handover", Start: func(context.Context) error { return nil }, Stop: n.handOverAll}
}

// clusterStore is where the cluster's buckets live on this node's bus.
func (n *node) clusterStore() cluster.Store {
	return cluster.Store{Storage: n.bus.Storage(), Replicas: n.bus.Replicas()}
}
