package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/dispatch"
	"github.com/vigil-oss/vigil/internal/core/broker"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/lifecycle"
)

// raiseAlarm puts a door's silent alarm on the bus as an alarm event: stored, on the console's
// alert feed, dispatchable like any alert.
func (n *node) raiseAlarm(a access.Alarm) {
	camera := a.Camera
	if camera == "" {
		camera = "door:" + a.Door
	}
	n.publishAlarm(&event.Event{ID: event.NewID(a.Time), Camera: camera, Kind: event.KindAlarm, Time: a.Time, First: a.Time,
		Alarm: &event.Alarm{Type: a.Type, Door: a.Door, PersonID: a.PersonID, Plate: a.Plate, Area: a.Area}})
	n.log.Warn("alarm", "type", a.Type, "door", a.Door, "camera", a.Camera)
}

// raiseSensorAlarm puts a sensor's alarm (or its going offline) on the bus as an alarm event at
// its first linked camera, so that the console's alert opens that camera live.
func (n *node) raiseSensorAlarm(a dispatch.SensorAlarm) {
	camera := "sensor:" + a.Sensor.ID
	if len(a.Sensor.Cameras) > 0 {
		camera = a.Sensor.Cameras[0]
	}
	ev := &event.Event{ID: a.EventID, Camera: camera, Kind: event.KindAlarm, Time: a.Time, First: a.Time,
		Alarm: &event.Alarm{Type: a.Type, Sensor: a.Sensor.ID, Name: a.Sensor.Name, Cameras: a.Sensor.Cameras, Value: a.Value}}
	n.publishAlarm(ev)
	n.log.Warn("sensor alarm", "type", a.Type, "sensor", a.Sensor.ID, "camera", camera)
}

// publishAlarm publishes an alarm event in the background (the bus may be slow; the caller is
// a report handler or the engine).
func (n *node) publishAlarm(ev *event.Event) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.bus.Publish(ctx, ev.Subject(), ev.ID, ev.Pack()); err != nil {
			n.log.Error("alarm not published", "camera", ev.Camera, "type", ev.Alarm.Type, "err", err)
		}
	}()
}

// sensorsComponent takes the site sensors' reports from the broker and marks offline those that
// miss their heartbeats (every node may: the database decides which raises the alarm).
func (n *node) sensorsComponent() lifecycle.Component {
	var bg background
	stop, cancel := func() {}, context.CancelFunc(func() {})
	return lifecycle.Component{Name: "sensors", Start: func(context.Context) (err error) {
		n.dispatch.OnSensorAlarm(n.raiseSensorAlarm)
		reports := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_sensor_reports_total",
			Help: "Sensors' MQTT messages by result: taken, unknown (no such sensor), malformed, failed."}, []string{"result"})
		if err := n.reg.Register(reports); err != nil {
			return err
		}
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background()) // the reports' work ends at Stop
		if m := n.cfg.Sensors.Broker(n.cfg.Access.MQTT); m.URL != "" {
			stop, err = n.dispatch.StartSensorMQTT(ctx, dispatch.SensorMQTT{Config: broker.Config{URL: m.URL,
				Username: m.Username, Password: m.Password.Reveal()}, Topic: m.Topic}, func(result string) { reports.WithLabelValues(result).Inc() }, event.NewID, n.log)
			if err != nil {
				stop = func() {}
				cancel()
				return err
			}
		}
		bg.every(n.cfg.Sensors.CheckEvery.D(), func(ctx context.Context) {
			if _, err := n.dispatch.CheckHeartbeats(ctx, event.NewID); err != nil && ctx.Err() == nil {
				n.log.Error("sensor heartbeats not checked", "err", err)
			}
		})
		return nil
	}, Stop: func() {
		bg.stop()
		stop()
		cancel()
	}}
}

func (n *node) mqttComponent() lifecycle.Component {
	return subscription("mqtt", func(ctx context.Context) (func(), error) {
		m := n.cfg.Access.MQTT
		return access.StartMQTT(ctx, n.engine, access.MQTTConfig{URL: m.URL, Topic: m.Topic,
			Username: m.Username, Password: m.Password.Reveal()}, n.log)
	})
}
