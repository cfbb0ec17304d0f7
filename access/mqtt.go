package access

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/core/broker"
)

// MQTTConfig connects the engine's command channel to an MQTT broker, for controllers that
// subscribe there instead of long-polling vigil.
type MQTTConfig struct {
	URL      string // tcp://127.0.0.1:1883, ssl://…, ws://…
	Topic    string // prefix; commands go to {Topic}/{door}/commands. Default vigil/doors.
	Username string
	Password string
}

// MQTTMessage is what a controller receives on {prefix}/{door}/commands: the command exactly as
// signed, the time it was signed, and the signature with the door's key (SignCommand over ts,
// the command's id as the nonce, and the command's bytes).
type MQTTMessage struct {
	Command   json.RawMessage `json:"command"`
	Timestamp string          `json:"ts"`
	Signature string          `json:"sig"`
}

// CommandTopic is the topic a door's commands are published on.
func CommandTopic(prefix, door string) string {
	if prefix == "" {
		prefix = "vigil/doors"
	}
	return strings.TrimSuffix(prefix, "/") + "/" + door + "/commands"
}

// SignMQTT wraps a command for the broker, signed with the door's key.
func SignMQTT(key []byte, cmd Command) ([]byte, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	return json.Marshal(MQTTMessage{Command: body, Timestamp: ts, Signature: SignCommand(key, ts, cmd.ID, body)})
}

// ErrMQTTSignature means a message on a door's topic was not signed with its key: anyone who can
// publish to the broker could have sent it, so it is ignored.
var ErrMQTTSignature = errors.New("access: MQTT command signature does not verify")

// OpenMQTT verifies a message from the broker and returns its command. A command for another
// door or one past its expiry is refused too.
func OpenMQTT(key []byte, door string, payload []byte, now time.Time) (Command, error) {
	var m MQTTMessage
	var cmd Command
	if err := json.Unmarshal(payload, &m); err != nil {
		return cmd, fmt.Errorf("access: MQTT message: %w", err)
	}
	if err := json.Unmarshal(m.Command, &cmd); err != nil {
		return cmd, fmt.Errorf("access: MQTT command: %w", err)
	}
	if !hmac.Equal([]byte(SignCommand(key, m.Timestamp, cmd.ID, m.Command)), []byte(m.Signature)) {
		return cmd, ErrMQTTSignature
	}
	if cmd.Door != door {
		return cmd, fmt.Errorf("access: MQTT command for door %q on door %q's topic", cmd.Door, door)
	}
	if !now.Before(cmd.Expires) {
		return cmd, fmt.Errorf("access: MQTT command %s expired at %s", cmd.ID, cmd.Expires.Format(time.RFC3339))
	}
	return cmd, nil
}

// StartMQTT publishes every command the engine queues (auto-unlocks, remote unlocks) to the
// broker as well, QoS 1, signed with the door's key. The connection is kept up (reconnecting in
// the background); a command published while the broker is away is logged as failed and stays on
// the long-poll channel. stop disconnects.
func StartMQTT(ctx context.Context, e *Engine, cfg MQTTConfig, log *slog.Logger) (stop func(), err error) {
	log = log.With("component", "mqtt", "broker", cfg.URL)
	c, err := broker.Connect(ctx, broker.Config{URL: cfg.URL, Username: cfg.Username, Password: cfg.Password}, log, nil)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	e.OnCommand(func(cmd Command, key []byte) {
		payload, err := SignMQTT(key, cmd)
		if err != nil {
			return
		}
		t := c.Publish(CommandTopic(cfg.Topic, cmd.Door), 1, false, payload)
		go func() {
			if !t.WaitTimeout(time.Until(cmd.Expires)) || t.Error() != nil {
				log.Warn("MQTT command not delivered to the broker", "door", cmd.Door, "command", cmd.ID, "err", t.Error())
			}
		}()
	})
	return func() { c.Disconnect(250) }, nil
}
