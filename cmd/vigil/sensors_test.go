package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

type storedAlarm struct {
	ID, Camera, Kind string
	Attrs            struct {
		Alarm struct {
			Type, Sensor, Name string
			Cameras            []string
			Value              json.RawMessage
		}
	}
}

// sensorNode starts a node whose sensors report to the machine's Mosquitto on estate/sensors,
// with heartbeats checked every 200 ms, and an admin client.
func sensorNode(t *testing.T) (n *testNode, admin *http.Client, broker *testenv.MQTTBroker, data string) {
	broker = testenv.StartMQTT(t)
	data = t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	admin = tokenClient(t, "admin", "estate office", data)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Live.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.Sensors.MQTT = config.MQTT{URL: broker.URL, Topic: "estate/sensors"}
	cfg.Sensors.CheckEvery = config.Duration(200 * time.Millisecond)
	return startNode(t, cfg), admin, broker, data
}

func postJSON(t *testing.T, c *http.Client, url string, body any, want int, v any) {
	t.Helper()
	b, _ := json.Marshal(body)
	r, err := c.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != want {
		var e map[string]any
		_ = json.NewDecoder(r.Body).Decode(&e)
		t.Fatalf("POST %s: %d, want %d: %v", url, r.StatusCode, want, e)
	}
	if v != nil {
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

// alarms polls the stored alarm events until want(events) holds, for up to 5 s.
func alarms(t *testing.T, c *http.Client, base string, want func([]storedAlarm) bool) []storedAlarm {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var res struct{ Events []storedAlarm }
		getJSON(t, c, base+"/v1/events?kind=alarm&reason=sensor+test", &res)
		if want(res.Events) {
			return res.Events
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarm events %+v", res.Events)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sensorState(t *testing.T, c *http.Client, base, id string) string {
	var sn struct{ State string }
	getJSON(t, c, base+"/v1/sensors/"+id, &sn)
	return sn.State
}

// TestSensorsOverMQTT: a fire detector registered with a linked camera and a place on the map
// raises one alarm event per alarm over MQTT (a repeat raises none), clears, goes offline when it
// misses its heartbeats (one sensor_offline alarm) and comes back with its next report; a
// report from a sensor that is not registered, or a malformed one, raises nothing.
func TestSensorsOverMQTT(t *testing.T) {
	n, admin, broker, data := sensorNode(t)
	base := n.URL
	var reg struct {
		Sensor struct{ ID, State string }
		Key    string
	}
	postJSON(t, admin, base+"/v1/sensors", map[string]any{"id": "fire-b7", "kind": "fire", "name": "Block 7 stairwell",
		"cameras": []string{"cam001", "cam002"}, "heartbeat_s": 1, "map": []float64{0.4, 0.6}}, 201, &reg)
	if reg.Sensor.State != "ok" || len(reg.Key) != 64 {
		t.Fatalf("registered %+v", reg)
	}
	postJSON(t, admin, base+"/v1/sensors", map[string]any{"id": "fire-b7", "kind": "lava"}, 400, nil)
	viewer := tokenClient(t, "patrol", "patrol 1", data)
	postJSON(t, viewer, base+"/v1/sensors", map[string]any{"id": "x1", "kind": "fire"}, 403, nil)

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("fire-panel"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("panel connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	pub := func(topic, body string) {
		t.Helper()
		if tok := c.Publish(topic, 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	pub("estate/sensors/fire-b7/heartbeat", "")
	pub("estate/sensors/ghost/alarm", `{}`)
	pub("estate/sensors/fire-b7/alarm", `{not json`)
	time.Sleep(300 * time.Millisecond) // the subscription is made as the node connects
	pub("estate/sensors/fire-b7/alarm", `{"value": {"zone": "B7 stairwell, floor 3"}}`)
	got := alarms(t, admin, base, func(e []storedAlarm) bool { return len(e) >= 1 })
	a := got[0]
	if a.Camera != "cam001" || a.Attrs.Alarm.Type != "fire" || a.Attrs.Alarm.Sensor != "fire-b7" ||
		len(a.Attrs.Alarm.Cameras) != 2 || !bytes.Contains(a.Attrs.Alarm.Value, []byte("floor 3")) {
		t.Fatalf("alarm %+v", a)
	}
	if st := sensorState(t, admin, base, "fire-b7"); st != "alarm" {
		t.Fatalf("state %q after the alarm", st)
	}
	pub("estate/sensors/fire-b7/alarm", `{}`) // the panel repeats itself
	time.Sleep(500 * time.Millisecond)
	if got := alarms(t, admin, base, func([]storedAlarm) bool { return true }); len(got) != 1 {
		t.Fatalf("a repeated alarm raised another: %+v", got)
	}
	pub("estate/sensors/fire-b7/clear", `{}`)
	waitFor(t, 5*time.Second, "the sensor cleared", func() bool { return sensorState(t, admin, base, "fire-b7") == "ok" })
	if m := metricsText(t, base); !strings.Contains(m, `vigil_sensor_reports_total{result="unknown"} 1`) ||
		!strings.Contains(m, `vigil_sensor_reports_total{result="malformed"} 1`) {
		t.Fatalf("reports not counted: %s", grepLines(m, "vigil_sensor_reports_total"))
	}

	// Heartbeats stop: offline within 3 missed heartbeats (and the check), one alarm raised.
	waitFor(t, 6*time.Second, "the sensor shown offline", func() bool { return sensorState(t, admin, base, "fire-b7") == "offline" })
	got = alarms(t, admin, base, func(e []storedAlarm) bool { return len(e) >= 2 })
	if got[0].Attrs.Alarm.Type != "sensor_offline" || got[0].Attrs.Alarm.Sensor != "fire-b7" || len(got) != 2 {
		t.Fatalf("offline alarms %+v", got)
	}
	pub("estate/sensors/fire-b7/heartbeat", "")
	waitFor(t, 5*time.Second, "the sensor back", func() bool { return sensorState(t, admin, base, "fire-b7") == "ok" })
	var m struct{ Items []struct{ Kind, ID string } }
	getJSON(t, admin, base+"/v1/map", &m)
	if !containsItem(m.Items, "sensor", "fire-b7") {
		t.Fatalf("the sensor is not on the map: %+v", m.Items)
	}
}

func containsItem(items []struct{ Kind, ID string }, kind, id string) bool {
	for _, it := range items {
		if it.Kind == kind && it.ID == id {
			return true
		}
	}
	return false
}

// TestSensorWebhook: a panic button reports over the signed webhook; a report signed with
// another key, a replay and an unknown sensor are refused and raise nothing.
func TestSensorWebhook(t *testing.T) {
	n, admin, _, _ := sensorNode(t)
	base := n.URL
	var reg struct{ Key string }
	postJSON(t, admin, base+"/v1/sensors", map[string]any{"id": "panic-lobby", "kind": "panic", "heartbeat_s": 0,
		"cameras": []string{"cam003"}}, 201, &reg)
	key, _ := hex.DecodeString(reg.Key)
	send := func(id, ev string, key []byte, nonce string, body []byte) int {
		path := "/v1/sensors/" + id + "/events/" + ev
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		req.Header.Set(access.HeaderTimestamp, ts)
		req.Header.Set(access.HeaderNonce, nonce)
		req.Header.Set(access.HeaderSignature, access.Sign(key, "POST", path, "", ts, nonce, body))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	body := []byte(`{"value": "pressed"}`)
	if code := send("panic-lobby", "alarm", make([]byte, 32), "nonce-0000000000000001", body); code != 401 {
		t.Fatalf("another key: %d", code)
	}
	if code := send("panic-lobby", "alarm", key, "nonce-0000000000000002", body); code != 200 {
		t.Fatalf("signed alarm: %d", code)
	}
	if code := send("panic-lobby", "alarm", key, "nonce-0000000000000002", body); code != 401 {
		t.Fatalf("replay: %d", code)
	}
	if code := send("ghost", "alarm", key, "nonce-0000000000000003", body); code != 404 {
		t.Fatalf("unknown sensor: %d", code)
	}
	if code := send("panic-lobby", "smoke-signal", key, "nonce-0000000000000004", body); code != 400 {
		t.Fatalf("unknown report: %d", code)
	}
	got := alarms(t, admin, base, func(e []storedAlarm) bool { return len(e) >= 1 })
	if len(got) != 1 || got[0].Camera != "cam003" || got[0].Attrs.Alarm.Type != "panic" {
		t.Fatalf("alarms %+v", got)
	}
	if st := sensorState(t, admin, base, "panic-lobby"); st != "alarm" {
		t.Fatalf("state %q", st)
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	r, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitFor polls cond every 100 ms until it holds, failing after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSensorAlarmOnMap: an operator watches the site map in headless Chromium; a fire alarm
// published over MQTT blinks at the sensor and its linked camera plays live beside the plan
// within 2 s; the alert is acknowledged on the feed; when the sensor's heartbeats stop, the map
// shows it offline.
func TestSensorAlarmOnMap(t *testing.T) {
	node, dir := consoleRunner(t)
	sim := startCamsim(t, 1)
	broker := testenv.StartMQTT(t)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	admin := tokenClient(t, "admin", "estate office", data)
	_, out, _ := runCmd("token", "create", "--role", "operator", "--name", "police post 1", "--data", data)
	operator := strings.TrimSpace(out)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Live.UDPAddr = "127.0.0.1:0"
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{"rtsp://" + sim + "/cam/001"})
	cfg.Sensors.MQTT = config.MQTT{URL: broker.URL}
	cfg.Sensors.CheckEvery = config.Duration(500 * time.Millisecond)
	n := startNode(t, cfg)
	postJSON(t, admin, n.URL+"/v1/sensors", map[string]any{"id": "fire-b7", "kind": "fire", "name": "Block 7 stairwell",
		"cameras": []string{"cam001"}, "heartbeat_s": 2, "map": []float64{0.4, 0.6}}, 201, nil)

	panel := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("fire-panel-map"))
	if tok := panel.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("panel connect: %v", tok.Error())
	}
	defer panel.Disconnect(100)
	beats := make(chan struct{})
	go func() { // heartbeats until the browser has seen the alarm
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			panel.Publish("vigil/sensors/fire-b7/heartbeat", 0, false, "")
			select {
			case <-beats:
				return
			case <-tick.C:
			}
		}
	}()
	stopBeats := sync.OnceFunc(func() { close(beats) })
	defer stopBeats()

	cmd := exec.Command(node, "sensors.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE="+n.URL, "TOKEN="+operator, "SENSOR=fire-b7", "CAMERA=cam001", "OUT="+artifacts(t, "sensors"))
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	var last string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == "READY":
			panel.Publish("vigil/sensors/fire-b7/alarm", 1, false, `{"value": {"zone": "B7 stairwell, floor 3"}}`).Wait()
			time.AfterFunc(4*time.Second, stopBeats)
		default:
			last = line
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sensors.mjs: %v\n%s\n%s", err, stderr.String(), last)
	}
	var res struct {
		Before, State, Title, Row, Alert, OfflineRow string
		BlinkMs, LiveMs                              float64
		Acked                                        bool
		Errors                                       []string
	}
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		t.Fatalf("sensors.mjs printed %q: %v", last, err)
	}
	t.Logf("fire alarm over MQTT → blinking on the map %.0f ms, linked camera live %.0f ms", res.BlinkMs, res.LiveMs)
	if res.Before != "ok" || res.State != "alarm" || !strings.Contains(res.Title, "FIRE at Block 7 stairwell") ||
		!strings.Contains(res.Row, "alarm") || !strings.Contains(res.Alert, "FIRE") || !res.Acked {
		t.Fatalf("map %+v", res)
	}
	if res.BlinkMs > 2000 || res.LiveMs > 2000 {
		t.Fatalf("alarm on the map after %.0f ms, live view after %.0f ms; want both within 2 s", res.BlinkMs, res.LiveMs)
	}
	if !strings.Contains(res.OfflineRow, "offline") || len(res.Errors) > 0 {
		t.Fatalf("offline row %q, page errors %v", res.OfflineRow, res.Errors)
	}
}
