package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-oss/vigil/internal/core/broker"
)

// SensorMQTT is where sensors report: {Topic}/{sensor}/{alarm|clear|heartbeat} with a JSON body
// {"ts"?, "value"?}. Every node of a site subscribes as one shared subscription
// ($share/vigil-sensors/…), so the broker hands each message to one node.
type SensorMQTT struct {
	broker.Config
	Topic string // default vigil/sensors
}

// maxSensorMessage bounds one message's body: a timestamp and a small reading.
const maxSensorMessage = 4096

// SensorMessage is a sensor's MQTT body (and the webhook's).
type SensorMessage struct {
	TS    *time.Time      `json:"ts"`
	Value json.RawMessage `json:"value"`
}

// SensorTopic is the topic prefix (default vigil/sensors), without a trailing slash.
func SensorTopic(prefix string) string {
	if prefix == "" {
		prefix = "vigil/sensors"
	}
	return strings.TrimSuffix(prefix, "/")
}

// StartSensorMQTT subscribes to the sensors' topic and takes their reports. newID makes alarm
// events' ids; count hears each message's fate (taken, unknown, malformed). A report from a sensor that is not registered, on a topic of another shape, or
// with a body that is not the JSON above is dropped and counted (a debug line each: anyone
// allowed to publish on the broker can send them). stop disconnects.
func (s *Service) StartSensorMQTT(ctx context.Context, cfg SensorMQTT, count func(result string), newID func(time.Time) string, log *slog.Logger) (stop func(), err error) {
	prefix := SensorTopic(cfg.Topic)
	log = log.With("component", "sensors", "broker", cfg.URL, "topic", prefix)
	handle := func(_ mqtt.Client, m mqtt.Message) {
		rest, ok := strings.CutPrefix(m.Topic(), prefix+"/")
		id, report, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 || strings.Contains(report, "/") || len(m.Payload()) > maxSensorMessage {
			count("malformed")
			return
		}
		var body SensorMessage
		if p := m.Payload(); len(p) > 0 && json.Unmarshal(p, &body) != nil {
			count("malformed")
			log.Debug("sensor message is not JSON", "topic", m.Topic())
			return
		}
		at := time.Now()
		if body.TS != nil && body.TS.Before(at) && at.Sub(*body.TS) < time.Hour {
			at = *body.TS // the sensor's own time, when it is a sane one
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := s.Report(rctx, id, report, body.Value, at, newID)
		switch {
		case errors.Is(err, ErrNotFound):
			count("unknown")
			log.Debug("report from a sensor that is not registered", "sensor", id)
		case errors.Is(err, ErrInvalid):
			count("malformed")
		case err != nil:
			count("failed")
			log.Error("sensor report not taken", "sensor", id, "report", report, "err", err)
		default:
			count("taken")
		}
	}
	filter := "$share/vigil-sensors/" + prefix + "/+/+"
	c, err := broker.Connect(ctx, cfg.Config, log, func(c mqtt.Client) {
		go func() { // not on the client's own goroutine: a subscribe waits for the broker's answer
			if t := c.Subscribe(filter, 1, handle); t.WaitTimeout(10*time.Second) && t.Error() != nil {
				log.Error("sensor topic not subscribed", "err", t.Error())
			}
		}()
	})
	if err != nil {
		return nil, err
	}
	return func() { c.Disconnect(250) }, nil
}
