package main

import (
	"log/slog"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/api/live"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/streams"
	"github.com/vigil-oss/vigil/streams/rtsp"
)

// startLive starts the WebRTC relay over the camera pool. A relay that cannot start (its UDP
// port taken) turns live view off with an error in the log; doors and recording go on.
func startLive(c config.Live, pool *rtsp.Pool, reg prometheus.Registerer, log *slog.Logger) *live.Relay {
	lc := live.Config{UDPAddr: c.UDPAddr, PublicIPs: c.PublicIPs, MaxViewers: c.MaxViewers, MaxPerOwner: c.MaxViewsPerPrincipal, BatchWrites: c.BatchWrites, NoShed: !c.ShedOverload}
	for _, s := range c.ICEServers {
		lc.ICEServers = append(lc.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential.Reveal()})
	}
	r, err := live.New(lc, func(id string) (*streams.Stream, bool) {
		s, ok := pool.Get(id)
		if !ok {
			return nil, false
		}
		return s.Stream(), true
	}, reg, log)
	if err != nil {
		log.Error("live view is off", "err", err)
		return nil
	}
	log.Info("live view (WHEP) on", "udp", r.Addr().String())
	return r
}
