package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func containerEvent(id, name, image string, action events.Action, t time.Time) events.Message {
	return events.Message{
		Type:   events.ContainerEventType,
		Action: action,
		Actor:  events.Actor{ID: id, Attributes: map[string]string{"name": name, "image": image, "com.example.tier": "web"}},
		Time:   t.Unix(), TimeNano: t.UnixNano(),
	}
}

func drain(t *testing.T, sub *Subscription, timeout time.Duration) []EventMessage {
	t.Helper()
	var out []EventMessage
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-deadline:
			t.Fatalf("subscription not closed after %v (got %d events)", timeout, len(out))
		}
	}
}

func actions(evs []EventMessage) string {
	var s []string
	for _, ev := range evs {
		s = append(s, string(ev.Action))
	}
	return strings.Join(s, ",")
}

func TestEventsPublishFillsLegacyFields(t *testing.T) {
	e := NewEvents(8)
	before := time.Now()
	ev := e.publish(events.Message{Type: events.ContainerEventType, Action: events.ActionStart,
		Actor: events.Actor{ID: "c1", Attributes: map[string]string{"image": "busybox", "name": "web"}}})
	if ev.Status != "start" || ev.ID != "c1" || ev.From != "busybox" || ev.Scope != "local" {
		t.Errorf("container event legacy fields: %+v", ev)
	}
	if ev.TimeNano < before.UnixNano() || ev.Time != ev.TimeNano/int64(time.Second) {
		t.Errorf("times: %d %d", ev.Time, ev.TimeNano)
	}
	img := e.publish(events.Message{Type: events.ImageEventType, Action: events.ActionPull, Actor: events.Actor{ID: "busybox:latest"}})
	if img.Status != "pull" || img.ID != "busybox:latest" || img.From != "" || img.Actor.Attributes == nil {
		t.Errorf("image event: %+v", img)
	}
	nw := e.publish(events.Message{Type: events.NetworkEventType, Action: events.ActionConnect, Actor: events.Actor{ID: "n1"}, Time: 1700000000})
	if nw.Status != "" || nw.ID != "" || nw.TimeNano != 1700000000*int64(time.Second) {
		t.Errorf("network event: %+v", nw)
	}

	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"} {
		if _, ok := m[k]; !ok {
			t.Errorf("wire event lacks %q: %s", k, b)
		}
	}
	if !strings.HasPrefix(string(b), `{"status":"start","id":"c1","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{`) {
		t.Errorf("wire order: %s", b)
	}
}

func TestEventsSinceUntil(t *testing.T) {
	e := NewEvents(4)
	base := time.Now().Add(-time.Hour)
	for i, a := range []events.Action{"create", "start", "die", "destroy", "create", "start"} {
		e.Publish(containerEvent("c1", "web", "busybox", a, base.Add(time.Duration(i)*time.Second)))
	}
	// The ring holds the last 4: die(2s) destroy(3s) create(4s) start(5s).
	ctx := t.Context()
	if got := actions(drain(t, e.Subscribe(ctx, Filters{}, base, base.Add(time.Minute)), time.Second)); got != "die,destroy,create,start" {
		t.Errorf("since base: %s", got)
	}
	if got := actions(drain(t, e.Subscribe(ctx, Filters{}, base.Add(3*time.Second), base.Add(4*time.Second)), time.Second)); got != "destroy,create" {
		t.Errorf("since 3s until 4s: %s", got)
	}
	// until past, no since: nothing, closed at once (as dockerd).
	if got := drain(t, e.Subscribe(ctx, Filters{}, time.Time{}, base.Add(time.Minute)), time.Second); len(got) != 0 {
		t.Errorf("until only: %v", got)
	}

	// Live: since now, until soon; an event after until is not delivered.
	sub := e.Subscribe(ctx, Filters{}, time.Now(), time.Now().Add(300*time.Millisecond))
	e.Publish(containerEvent("c2", "db", "redis", "start", time.Now()))
	e.Publish(containerEvent("c2", "db", "redis", "kill", time.Now().Add(time.Hour)))
	start := time.Now()
	got := drain(t, sub, 3*time.Second)
	if actions(got) != "start" || got[0].ID != "c2" {
		t.Errorf("live until: %v", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("until took %v to end the subscription", d)
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err after until: %v", err)
	}
	if n := e.Subscribers(); n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}

func TestEventsFilters(t *testing.T) {
	e := NewEvents(64)
	base := time.Now().Add(-time.Minute)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
	msgs := []events.Message{
		containerEvent("aaaa1111", "web", "busybox:latest", "start", at(0)),
		containerEvent("bbbb2222", "db", "redis", "die", at(1)),
		{Type: events.ImageEventType, Action: events.ActionPull, Actor: events.Actor{ID: "busybox:latest", Attributes: map[string]string{"name": "busybox:latest"}}, TimeNano: at(2).UnixNano()},
		{Type: events.VolumeEventType, Action: events.ActionCreate, Actor: events.Actor{ID: "vol1", Attributes: map[string]string{"driver": "local"}}, TimeNano: at(3).UnixNano()},
		{Type: events.NetworkEventType, Action: events.ActionConnect, Actor: events.Actor{ID: "net123", Attributes: map[string]string{"name": "bridge", "container": "aaaa1111"}}, TimeNano: at(4).UnixNano()},
		{Type: events.DaemonEventType, Action: events.ActionReload, Actor: events.Actor{ID: "DAEMONID", Attributes: map[string]string{"name": "host1"}}, TimeNano: at(5).UnixNano()},
		containerEvent("aaaa1111", "web", "busybox:latest", "exec_start: sh -c true", at(6)),
		containerEvent("aaaa1111", "web", "busybox:latest", "health_status: healthy", at(7)),
	}
	for _, m := range msgs {
		e.Publish(m)
	}
	for _, tc := range []struct {
		filters string
		want    string
	}{
		{``, "start,die,pull,create,connect,reload,exec_start: sh -c true,health_status: healthy"},
		{`{"type":{"container":true}}`, "start,die,exec_start: sh -c true,health_status: healthy"},
		{`{"type":{"image":true,"volume":true}}`, "pull,create"},
		{`{"event":{"start":true}}`, "start"},
		{`{"event":{"exec_start":true}}`, "exec_start: sh -c true"},
		{`{"event":{"health_status":true,"die":true}}`, "die,health_status: healthy"},
		{`{"container":{"web":true}}`, "start,exec_start: sh -c true,health_status: healthy"},
		{`{"container":{"bbbb":true}}`, "die"},
		{`{"image":{"busybox":true}}`, "start,pull,exec_start: sh -c true,health_status: healthy"},
		{`{"image":{"redis:latest":true}}`, ""},
		{`{"image":{"redis":true}}`, "die"},
		{`{"label":{"com.example.tier=web":true}}`, "start,die,exec_start: sh -c true,health_status: healthy"},
		{`{"label":{"com.example.tier=db":true}}`, ""},
		{`{"label":{"driver":true}}`, "create"},
		{`{"volume":{"vol1":true}}`, "create"},
		{`{"network":{"bridge":true}}`, "connect"},
		{`{"daemon":{"DAEMONID":true}}`, "reload"},
		{`{"scope":{"local":true}}`, "start,die,pull,create,connect,reload,exec_start: sh -c true,health_status: healthy"},
		{`{"scope":{"swarm":true}}`, ""},
		{`{"type":["container"],"event":["die"]}`, "die"}, // legacy list form
	} {
		f, err := ParseFilters(tc.filters)
		if err != nil {
			t.Fatalf("%s: %v", tc.filters, err)
		}
		got := actions(drain(t, e.Subscribe(t.Context(), f, base, base.Add(time.Second)), time.Second))
		if got != tc.want {
			t.Errorf("filters %s: got %q, want %q", tc.filters, got, tc.want)
		}
	}
}

func TestEventsSlowSubscriberDoesNotBlock(t *testing.T) {
	e := NewEvents(16)
	e.subBuffer = 4
	slow := e.Subscribe(t.Context(), Filters{}, time.Time{}, time.Time{})
	fast := e.Subscribe(t.Context(), Filters{}, time.Time{}, time.Time{})
	got := make(chan int)
	go func() {
		n := 0
		for range fast.C() {
			n++
		}
		got <- n
	}()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			e.Publish(containerEvent("c", "n", "i", "start", time.Now()))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publishers blocked by a subscriber that never reads")
	}
	if evs := drain(t, slow, time.Second); len(evs) != 4 {
		t.Errorf("slow subscriber got %d buffered events, want 4", len(evs))
	}
	if slow.Err() != ErrSlowSubscriber {
		t.Errorf("slow.Err() = %v", slow.Err())
	}
	fast.Close()
	if n := <-got; n == 0 {
		t.Error("fast subscriber got nothing")
	}
	if e.Subscribers() != 0 {
		t.Errorf("%d subscribers left", e.Subscribers())
	}
}

func TestParseEventTime(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for in, want := range map[string]time.Time{
		"":                     {},
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 500000000),
		"1700000000.000000001": time.Unix(1700000000, 1),
		"2023-11-14T22:13:20Z": time.Unix(1700000000, 0),
		"10m":                  now.Add(-10 * time.Minute),
	} {
		got, err := ParseEventTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseEventTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseEventTime("yesterday", now); err == nil {
		t.Error("ParseEventTime(yesterday) succeeded")
	}
}

func eventsURL(q url.Values) string { return "/v1.41/events?" + q.Encode() }

func TestEventsHTTPStream(t *testing.T) {
	ts := startUnix(t, Options{}, Backends{})
	bus := ts.Events()

	// Headers arrive before any event.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://x"+eventsURL(url.Values{"filters": {`{"type":{"container":true}}`}}), nil)
	respC := make(chan *http.Response, 1)
	go func() {
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Error(err)
			close(respC)
			return
		}
		respC <- resp
	}()
	var resp *http.Response
	select {
	case resp = <-respC:
	case <-time.After(5 * time.Second):
		t.Fatal("events headers not flushed")
	}
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	wantHeader(t, resp.Header, "Content-Type", "application/json")

	// Wait until the handler subscribed, then publish; each event arrives
	// as its own line without more traffic.
	for bus.Subscribers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	br := bufio.NewReader(resp.Body)
	for i, a := range []events.Action{"create", "start"} {
		bus.Publish(events.Message{Type: events.ImageEventType, Action: "pull", Actor: events.Actor{ID: "skipped"}})
		bus.Publish(containerEvent(fmt.Sprintf("c%d", i), "web", "busybox", a, time.Now()))
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var ev EventMessage
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Action != a || ev.Status != string(a) || ev.ID != fmt.Sprintf("c%d", i) || ev.From != "busybox" || ev.Scope != "local" {
			t.Errorf("event %d: %s", i, line)
		}
	}
	cancel()

	// since/until in the past: the remembered events, then the stream ends.
	base := time.Now().Add(-time.Hour)
	bus.Publish(containerEvent("p1", "old", "busybox", "create", base))
	bus.Publish(containerEvent("p1", "old", "busybox", "start", base.Add(time.Second)))
	bus.Publish(containerEvent("p1", "old", "busybox", "die", base.Add(3*time.Second)))
	q := url.Values{"since": {fmt.Sprintf("%d.%09d", base.Unix(), base.Nanosecond())}, "until": {fmt.Sprint(base.Add(2 * time.Second).Unix())}}
	r2, body := ts.do(t, http.MethodGet, eventsURL(q))
	if r2.StatusCode != 200 {
		t.Fatalf("past events: %d %s", r2.StatusCode, body)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"Action":"create"`) || !strings.Contains(lines[1], `"Action":"start"`) {
		t.Errorf("past events body:\n%s", body)
	}

	// until a little ahead: the server ends the stream on its own.
	start := time.Now()
	q = url.Values{"until": {fmt.Sprintf("%.9f", float64(time.Now().Add(400*time.Millisecond).UnixNano())/1e9)}}
	r3, _ := ts.do(t, http.MethodGet, eventsURL(q))
	if r3.StatusCode != 200 || time.Since(start) > 3*time.Second {
		t.Errorf("future until: %d after %v", r3.StatusCode, time.Since(start))
	}

	r4, b4 := ts.do(t, http.MethodGet, eventsURL(url.Values{"since": {"200"}, "until": {"100"}}))
	wantErrorBody(t, r4, b4, 400, "`since` time (200) cannot be after `until` time (100)")
	r5, b5 := ts.do(t, http.MethodGet, eventsURL(url.Values{"since": {"soon"}}))
	if r5.StatusCode != 400 {
		t.Errorf("bad since: %d %s", r5.StatusCode, b5)
	}
	r6, b6 := ts.do(t, http.MethodGet, eventsURL(url.Values{"filters": {`{"type":`}}))
	if r6.StatusCode != 400 {
		t.Errorf("bad filters: %d %s", r6.StatusCode, b6)
	}
}

func TestDockerCLIEvents(t *testing.T) {
	ts := startUnix(t, Options{}, Backends{})
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	ts.Events().Publish(containerEvent("c0ffee", "web", "busybox", "create", base))
	ts.Events().Publish(events.Message{Type: events.ImageEventType, Action: events.ActionTag, Actor: events.Actor{ID: "sha256:1234", Attributes: map[string]string{"name": "busybox:v2"}}, TimeNano: base.Add(time.Second).UnixNano()})
	ts.Events().Publish(containerEvent("c0ffee", "web", "busybox", "start", base.Add(2*time.Second)))
	ts.Events().Publish(containerEvent("c0ffee", "web", "busybox", "die", base.Add(time.Hour)))

	host := "unix://" + ts.sock
	since, until := fmt.Sprint(base.Unix()), fmt.Sprint(base.Add(5*time.Second).Unix())
	out, errOut, code := runDocker(t, host, "events", "--since", since, "--until", until, "--filter", "type=container",
		"--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Status}} {{.From}}")
	if code != 0 || errOut != "" {
		t.Fatalf("docker events: exit %d, stderr %q", code, errOut)
	}
	if want := "container create c0ffee web create busybox\ncontainer start c0ffee web start busybox\n"; out != want {
		t.Errorf("docker events:\n%s\nwant:\n%s", out, want)
	}

	// The CLI converts an RFC 3339 --since itself and its default output
	// prints every event of the window.
	out, errOut, code = runDocker(t, host, "events", "--since", base.UTC().Format(time.RFC3339), "--until", until)
	if code != 0 || errOut != "" || strings.Count(out, "\n") != 3 || !strings.Contains(out, "image tag sha256:1234 (name=busybox:v2)") {
		t.Errorf("docker events default format: exit %d stderr %q\n%s", code, errOut, out)
	}

	// A live stream that ends at --until.
	done := make(chan struct{})
	var liveOut, liveErr string
	var liveCode int
	go func() {
		defer close(done)
		liveOut, liveErr, liveCode = runDocker(t, host, "events", "--until", fmt.Sprint(time.Now().Add(2*time.Second).Unix()+1), "--format", "{{.Action}}")
	}()
	for ts.Events().Subscribers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ts.Events().Publish(containerEvent("c1", "x", "busybox", "kill", time.Now()))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("docker events --until did not end")
	}
	if liveCode != 0 || liveErr != "" || liveOut != "kill\n" {
		t.Errorf("live docker events: exit %d stderr %q out %q", liveCode, liveErr, liveOut)
	}
}
