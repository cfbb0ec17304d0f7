// Command doorsim runs simulated door controllers against vigil: each keeps its door's credential
// cache, listens for unlock commands on its long-poll channel, decides from its cache while vigil
// is unreachable and uploads those decisions when it is back.
//
//	doorsim --server http://127.0.0.1:8080 --keys doors.json --doors 600
//	doorsim --server http://127.0.0.1:8080 --keys doors.json --mqtt tcp://127.0.0.1:1883
//
// With --mqtt the controllers take their commands from the broker (vigil's access.mqtt option)
// instead of long-polling vigil; the credential cache and uploads still use vigil's API.
//
// doors.json maps door ids to the hex keys `vigil doors add` printed: {"gate-1": "9f…", …}.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "vigil's API")
	keysFile := flag.String("keys", "doors.json", "door id → hex controller key (from vigil doors add)")
	n := flag.Int("doors", 0, "how many of the file's doors to run (0: all)")
	sync := flag.Duration("sync", 10*time.Second, "credential cache refresh interval")
	broker := flag.String("mqtt", "", "take commands from this MQTT broker (tcp://127.0.0.1:1883) instead of the long poll")
	topic := flag.String("topic", "vigil/doors", "MQTT topic prefix (vigil's access.mqtt.topic)")
	flag.Parse()
	if err := run(*server, *keysFile, *n, *sync, *broker, *topic); err != nil {
		fmt.Fprintln(os.Stderr, "doorsim:", err)
		os.Exit(1)
	}
}

func run(server, keysFile string, n int, syncEvery time.Duration, broker, topic string) error {
	b, err := os.ReadFile(keysFile)
	if err != nil {
		return err
	}
	var keys map[string]string
	if err := json.Unmarshal(b, &keys); err != nil {
		return fmt.Errorf("%s: %w", keysFile, err)
	}
	var ids []string
	for id := range keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if n > 0 && n < len(ids) {
		ids = ids[:n]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var ctrls []*doorsim.Controller
	var wg sync.WaitGroup
	for _, id := range ids {
		key, err := hex.DecodeString(keys[id])
		if err != nil || len(key) != 32 {
			return fmt.Errorf("door %s: key is not 64 hex digits", id)
		}
		c := doorsim.New(server, id, key)
		c.OnUnlock = func(cmd access.Command) {
			fmt.Printf("%s unlock %s for %s (%s)\n", time.Now().Format(time.TimeOnly), cmd.Door, cmd.PersonID, cmd.Reason)
		}
		ctrls = append(ctrls, c)
		if broker == "" {
			wg.Go(func() { c.Run(ctx, syncEvery) })
			continue
		}
		unsub, err := c.ConnectMQTT(broker, topic)
		if err != nil {
			stop()
			wg.Wait()
			return err
		}
		wg.Go(func() {
			defer unsub()
			c.RunSync(ctx, syncEvery)
		})
	}
	channel := "long poll"
	if broker != "" {
		channel = "MQTT " + broker
	}
	fmt.Printf("doorsim: %d controllers on %s, commands by %s (Ctrl-C stops)\n", len(ctrls), server, channel)
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			var unlocks int64
			cached, pending := 0, 0
			for _, c := range ctrls {
				unlocks += c.Unlocks.Load()
				cached += c.Cached()
				pending += c.Pending()
			}
			fmt.Printf("doorsim: %d unlocks received, %d credentials cached, %d offline decisions waiting to upload\n", unlocks, cached, pending)
		}
	}
}
