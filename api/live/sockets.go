package live

import (
	"fmt"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// The UDP sockets every session shares (one ICE UDP mux).

// listenUDP opens the sockets every session shares: the configured address, or, when its host
// is unspecified (":8189"), one socket per interface address on that port, so that each
// candidate's replies leave from the address the browser sent to (pion's mux on an
// unspecified address cannot promise that).
func listenUDP(cfg Config, lf logging.LoggerFactory) ([]net.PacketConn, ice.UDPMux, error) {
	host, port, err := net.SplitHostPort(cfg.UDPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("live: udp_addr %q: %w", cfg.UDPAddr, err)
	}
	var ips []string
	if ip := net.ParseIP(host); host != "" && !ip.IsUnspecified() {
		ips = []string{host}
	} else {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, nil, fmt.Errorf("live: listing interface addresses: %w", err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() && !n.IP.IsMulticast() {
				ips = append(ips, n.IP.String())
			}
		}
	}
	var socks []net.PacketConn
	var muxes []ice.UDPMux
	for _, ip := range ips {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, nil, fmt.Errorf("live: WebRTC UDP %s: %w", net.JoinHostPort(ip, port), err)
		}
		if uc, ok := c.(*net.UDPConn); ok { // room for bursts (key frames to many viewers at once)
			_ = uc.SetReadBuffer(4 << 20)
			_ = uc.SetWriteBuffer(4 << 20)
			if cfg.BatchWrites {
				c = newBatchConn(uc)
			}
		}
		socks = append(socks, c)
		muxes = append(muxes, webrtc.NewICEUDPMux(lf.NewLogger("ice"), c))
	}
	if len(socks) == 0 {
		return nil, nil, fmt.Errorf("live: no interface address to listen on for %s", cfg.UDPAddr)
	}
	if len(muxes) == 1 {
		return socks, muxes[0], nil
	}
	return socks, ice.NewMultiUDPMuxDefault(muxes...), nil
}
