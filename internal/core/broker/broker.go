// Package broker connects vigil to an MQTT broker the same way for every use (door commands out,
// site sensors in): a random client id, reconnecting in the background, and a bounded wait for
// the first connection so that a broker that is away does not hold up the node's start.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Config is a broker connection.
type Config struct {
	URL      string // tcp://127.0.0.1:1883, ssl://…, ws://…
	Username string
	Password string
}

// Connect connects to the broker. onConnect runs on every (re)connection: subscriptions are made
// there, so that they come back with the connection. When the broker does not answer within 5 s
// the client keeps trying in the background and Connect returns it with a warning logged.
func Connect(ctx context.Context, cfg Config, log *slog.Logger, onConnect func(mqtt.Client)) (mqtt.Client, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	opts := mqtt.NewClientOptions().AddBroker(cfg.URL).SetClientID("vigil-" + hex.EncodeToString(b[:])).
		SetUsername(cfg.Username).SetPassword(cfg.Password).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectTimeout(5 * time.Second).SetMaxReconnectInterval(10 * time.Second).SetOrderMatters(false).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { log.Warn("MQTT broker connection lost; reconnecting", "err", err) }).
		SetOnConnectHandler(func(c mqtt.Client) {
			log.Info("MQTT broker connected")
			if onConnect != nil {
				onConnect(c)
			}
		})
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	select { // with SetConnectRetry the token completes only once connected: wait a little, not forever
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("MQTT broker %s: %w", cfg.URL, err)
		}
	case <-time.After(5 * time.Second):
		log.Warn("MQTT broker not reachable yet; still trying")
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, ctx.Err()
	}
	return c, nil
}
