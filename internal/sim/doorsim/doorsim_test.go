package doorsim

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestUnlockOverMQTT: with the MQTT option on, an auto-unlock reaches the controller subscribed
// on a real broker (Mosquitto), exactly once; a denied person sends nothing; a command forged by
// anyone else who can publish to the broker, or replayed after its expiry, opens nothing.
func TestUnlockOverMQTT(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	broker := testenv.StartMQTT(t)
	e, err := access.NewEngine(ctx, pool, audit.New(pool, filepath.Join(t.TempDir(), "anchor")), testenv.Secret())
	if err != nil {
		t.Fatal(err)
	}
	office := auth.Actor{Name: "estate office", Role: auth.RoleAdmin}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.AddUnit(ctx, office, "c3-0101", "", "C3"))
	must(e.AddPerson(ctx, office, "zhang", "Zhang Wei", "resident"))
	must(e.AddPerson(ctx, office, "visitor", "Someone", "visitor"))
	must(e.AddLease(ctx, office, "zhang", "c3-0101", time.Now().AddDate(0, -1, 0), time.Now().AddDate(1, 0, 0)))
	key, err := e.AddDoor(ctx, office, access.Door{ID: "c3-gate", Camera: "cam-c3"})
	must(err)
	must(e.AddRule(ctx, office, "c3-gate", "unit", "c3-0101", ""))
	_, _, err = e.AddCredential(ctx, office, "zhang", access.NewCredential{Kind: access.KindCard, Value: "CARD-ZHANG"})
	must(err)
	_, err = e.AddFaceTemplate(ctx, office, "zhang", access.FaceTemplate{Embedding: access.SyntheticFace(space.DefaultSpace, "zhang"),
		Quality: 0.9, Liveness: 0.9, Consent: "signed form (test)"})
	must(err)
	cam := func(person string) access.CameraFace {
		return access.CameraFace{Person: person, Votes: 2, Liveness: 0.97, Embedding: access.SyntheticFace(space.DefaultSpace, person), Model: space.DefaultSpace.Name}
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stop, err := access.StartMQTT(ctx, e, access.MQTTConfig{URL: broker.URL, Topic: "site/doors"}, log)
	must(err)
	defer stop()
	ctrl := New("http://127.0.0.1:1", "c3-gate", key)
	got := make(chan access.Command, 4)
	ctrl.OnUnlock = func(c access.Command) { got <- c }
	unsub, err := ctrl.ConnectMQTT(broker.URL, "site/doors")
	must(err)
	defer unsub()

	d, err := e.AutoUnlock(ctx, "c3-gate", cam("zhang"), "ev-1", time.Now())
	if err != nil || !d.Grant {
		t.Fatalf("auto-unlock: %+v %v", d, err)
	}
	select {
	case c := <-got:
		if c.PersonID != "zhang" || c.Door != "c3-gate" || c.Event != "ev-1" {
			t.Fatalf("command %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no unlock over MQTT within 5 s")
	}
	if d, _ := e.AutoUnlock(ctx, "c3-gate", cam("visitor"), "ev-2", time.Now()); d.Grant {
		t.Fatal("visitor granted")
	}
	// A forger who can publish on the broker: wrong key, then a genuine command replayed late.
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("forger"))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("forger connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	topic := access.CommandTopic("site/doors", "c3-gate")
	forged, _ := access.SignMQTT(make([]byte, 32), access.Command{ID: "f1", Door: "c3-gate", Action: "unlock", Expires: time.Now().Add(time.Minute)})
	stale, _ := access.SignMQTT(key, access.Command{ID: "f2", Door: "c3-gate", Action: "unlock", Expires: time.Now().Add(-time.Second)})
	other, _ := access.SignMQTT(key, access.Command{ID: "f3", Door: "b1-gate", Action: "unlock", Expires: time.Now().Add(time.Minute)})
	for _, p := range [][]byte{forged, stale, other, []byte("not json")} {
		pub.Publish(topic, 1, false, p).Wait()
	}
	deadline := time.Now().Add(5 * time.Second)
	for ctrl.Rejected.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case c := <-got:
		t.Fatalf("a forged or denied command opened the door: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
	if n, r := ctrl.Unlocks.Load(), ctrl.Rejected.Load(); n != 1 || r != 4 {
		t.Fatalf("%d unlocks, %d rejected; want 1 and 4", n, r)
	}
	// The same command on the long-poll channel as well acts once only.
	for _, c := range e.Commands(ctx, "c3-gate", time.Millisecond) {
		ctrl.deliver(c)
	}
	if n := ctrl.Unlocks.Load(); n != 1 {
		t.Fatalf("%d unlocks after the long poll delivered the same command", n)
	}
}
