package httpapi

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// TestGoSDK drives the server with the Docker Go SDK (moby/moby/client),
// which negotiates down to 1.41 and decodes the legacy shapes itself.
func TestGoSDK(t *testing.T) {
	ts := startUnix(t, Options{Version: "0.2.0"}, Backends{DiskUsage: fakeDF{}})
	c, err := client.New(client.WithHost("unix://"+ts.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()

	ping, err := c.Ping(ctx, client.PingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ping.APIVersion != "1.41" || ping.OSType != "linux" || ping.Experimental || ping.BuilderVersion != "1" ||
		ping.SwarmStatus == nil || ping.SwarmStatus.NodeState != swarm.LocalNodeStateInactive {
		t.Errorf("ping = %+v", ping)
	}

	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "0.2.0" || v.APIVersion != "1.41" || v.MinAPIVersion != "1.24" || len(v.Components) != 2 {
		t.Errorf("version = %+v", v)
	}

	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Info.Images != 7 || info.Info.Driver != "overlay2" || len(info.Info.RegistryConfig.IndexConfigs) != 2 || info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		t.Errorf("info = %+v", info.Info)
	}

	du, err := c.DiskUsage(ctx, client.DiskUsageOptions{Images: true, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if du.Images.TotalCount != 1 || du.Images.TotalSize != 1234 {
		t.Errorf("disk usage = %+v", du.Images)
	}

	base := time.Now().Add(-time.Minute)
	ts.Events().Publish(containerEvent("c1", "web", "busybox", "start", base))
	ts.Events().Publish(containerEvent("c2", "db", "redis", "start", base.Add(time.Millisecond)))
	res := c.Events(ctx, client.EventsListOptions{
		Since:   fmt.Sprint(base.Unix()),
		Until:   fmt.Sprint(base.Add(time.Second).Unix() + 1),
		Filters: make(client.Filters).Add("container", "db"),
	})
	var got []string
	for done := false; !done; {
		select {
		case m := <-res.Messages:
			got = append(got, m.Actor.ID+" "+string(m.Action))
		case err := <-res.Err:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("events: %v", err)
			}
			done = true
		case <-time.After(5 * time.Second):
			t.Fatal("events stream did not end at until")
		}
	}
	if len(got) != 1 || got[0] != "c2 start" {
		t.Errorf("events = %v", got)
	}
}
