package cli

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

func TestEllipsis(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"abcdef", 10, "abcdef"},
		{"abcdef", 6, "abcdef"},
		{"abcdef", 5, "abcd…"},
		{"abcdef", 1, "a"},
		{"abcdef", 0, ""},
		// Wide characters take two columns.
		{"日本語テキスト", 14, "日本語テキスト"},
		{"日本語テキスト", 6, "日本…"},
		{"a日本語", 4, "a日…"},
	} {
		if got := ellipsis(tc.in, tc.max); got != tc.want {
			t.Errorf("ellipsis(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestTemplateString(t *testing.T) {
	for in, want := range map[string]string{
		"table":                        "",
		"json":                         "{{json .}}",
		`table {{.ID}}\t{{.Size}}`:     "{{.ID}}\t{{.Size}}",
		`  {{.ID}}\n{{.Tag}}  `:        "{{.ID}}\n{{.Tag}}",
		"table\t{{.ID}}":               "\t{{.ID}}",
		"{{.Repository}}:{{.Tag}} end": "{{.Repository}}:{{.Tag}} end",
	} {
		if got := outputFormat(in).templateString(); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestImageRows(t *testing.T) {
	img := image.Summary{
		ID:       idApp,
		RepoTags: []string{"reg.test/b:1", "docker.io/library/a:x", "reg.test/b:2"},
		RepoDigests: []string{"reg.test/b@" + digestApp, "reg.test/b@" + digestAlpine, "other@" + digestBusybox,
			"not a reference"},
	}
	rows := func(showDigests, needDigest bool) string {
		var b strings.Builder
		for _, r := range imageRows(img, true, showDigests, needDigest) {
			b.WriteString(r.Repository() + " " + r.Tag() + " " + r.Digest() + "\n")
		}
		return b.String()
	}
	// Repositories keep the order of RepoTags; docker.io/library is shown
	// in its short form; a digest-only repository gets a <none> tag.
	want := "reg.test/b 1 <none>\nreg.test/b 2 <none>\na x <none>\nother <none> \n"
	if got := rows(false, false); got != want {
		t.Errorf("without digests:\n%s\nwant\n%s", got, want)
	}
	want = "reg.test/b 1 " + digestApp + "\nreg.test/b 1 " + digestAlpine + "\nreg.test/b 2 " + digestApp + "\nreg.test/b 2 " + digestAlpine +
		"\na x <none>\nother <none> " + digestBusybox + "\n"
	if got := rows(true, true); got != want {
		t.Errorf("with digests:\n%s\nwant\n%s", got, want)
	}
	if got := imageRows(image.Summary{ID: idNone}, true, false, false); len(got) != 1 || got[0].Repository() != "<none>" || got[0].Tag() != "<none>" {
		t.Errorf("dangling: %+v", got)
	}
}

func TestRowJSON(t *testing.T) {
	r := &historyRow{trunc: true, human: false, h: image.HistoryResponseItem{ID: idBusybox, CreatedBy: "a\tb", Size: 5, Comment: "c"}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["ID"] != "a1b2c3d4a1b2" || m["CreatedBy"] != "a b" || m["Size"] != "5" || m["Comment"] != "c" || len(m) != 6 {
		t.Fatalf("history row JSON %s", b)
	}
}

func TestEventMessageLegacyFields(t *testing.T) {
	ctr := newEventMessage(events.Message{Type: events.ContainerEventType, Action: "start",
		Actor: events.Actor{ID: "c1", Attributes: map[string]string{"image": "busybox", "name": "web"}}, Scope: "local", Time: 1, TimeNano: 1e9})
	if ctr.Status != "start" || ctr.ID != "c1" || ctr.From != "busybox" {
		t.Fatalf("container event %+v", ctr)
	}
	b, _ := json.Marshal(ctr)
	want := `{"status":"start","id":"c1","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{"image":"busybox","name":"web"}},"scope":"local","time":1,"timeNano":1000000000}`
	if string(b) != want {
		t.Fatalf("json\n%s\nwant\n%s", b, want)
	}
	img := newEventMessage(events.Message{Type: events.ImageEventType, Action: "pull", Actor: events.Actor{ID: "busybox:latest"}})
	if img.Status != "pull" || img.ID != "busybox:latest" || img.From != "" {
		t.Fatalf("image event %+v", img)
	}
	vol := newEventMessage(events.Message{Type: events.VolumeEventType, Action: "create", Actor: events.Actor{ID: "v"}})
	if vol.Status != "" || vol.ID != "" {
		t.Fatalf("volume event %+v", vol)
	}
	if _, err := eventsTemplate("{{.NoSuchField}}"); err == nil {
		t.Fatal("a template naming a missing field must fail before streaming")
	}
}

func TestDiskUsageRowsLegacy(t *testing.T) {
	du := client.DiskUsageResult{
		Images: client.ImagesDiskUsage{TotalSize: 1000, TotalCount: 3, Items: []image.Summary{
			{Containers: 2, Size: 600, SharedSize: 100},
			{Containers: 1, Size: 300, SharedSize: -1}, // unknown share: not counted as used
			{Containers: 0, Size: 100, SharedSize: 0},
		}},
		Containers: client.ContainersDiskUsage{TotalCount: 3, Items: []container.Summary{
			{State: "running", SizeRw: 10}, {State: "paused", SizeRw: 20}, {State: "exited", SizeRw: 70},
		}},
		Volumes: client.VolumesDiskUsage{TotalCount: 4, Items: []volume.Volume{
			{UsageData: &volume.UsageData{RefCount: 1, Size: 50}},
			{UsageData: &volume.UsageData{RefCount: 0, Size: 150}},
			{UsageData: &volume.UsageData{RefCount: 2, Size: -1}},
			{},
		}},
	}
	rows := diskUsageRows(du, true)
	var b bytes.Buffer
	if err := writeDiskUsage(&b, diskUsageFormat("table", false), rows); err != nil {
		t.Fatal(err)
	}
	want := "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n" +
		"Images          3         2         1kB       500B (50%)\n" +
		"Containers      3         2         100B      70B (70%)\n" +
		"Local Volumes   4         2         200B      150B (75%)\n" +
		"Build Cache     0         0         0B        0B\n"
	if b.String() != want {
		t.Fatalf("df:\n%s\nwant\n%s", b.String(), want)
	}
}

func TestDisplayablePorts(t *testing.T) {
	any4 := netip.MustParseAddr("0.0.0.0")
	for _, tc := range []struct {
		ports []container.PortSummary
		want  string
	}{
		{nil, ""},
		{[]container.PortSummary{{PrivatePort: 80, Type: "tcp"}}, "80/tcp"},
		{[]container.PortSummary{{PrivatePort: 82, Type: "tcp"}, {PrivatePort: 80, Type: "tcp"}, {PrivatePort: 81, Type: "tcp"}, {PrivatePort: 53, Type: "udp"}}, "53/udp, 80-82/tcp"},
		{[]container.PortSummary{{IP: any4, PrivatePort: 80, PublicPort: 8080, Type: "tcp"}}, "0.0.0.0:8080->80/tcp"},
		{[]container.PortSummary{{IP: any4, PrivatePort: 9988, PublicPort: 9988, Type: "tcp"}}, "0.0.0.0:9988->9988/tcp"},
		{[]container.PortSummary{{IP: netip.MustParseAddr("::"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"}, {PrivatePort: 443, Type: "tcp"}}, "443/tcp, [::]:8080->80/tcp"},
	} {
		if got := displayablePorts(tc.ports); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.ports, got, tc.want)
		}
	}
}

func TestWriteInspectDefaults(t *testing.T) {
	get := func(ref string) (any, []byte, error) {
		return struct{ Name string }{ref}, []byte(`{"Name":"` + ref + `","Extra":1}`), nil
	}
	var b bytes.Buffer
	if err := writeInspect(&b, []string{"a", "b"}, "", get); err != nil {
		t.Fatal(err)
	}
	want := "[\n    {\n        \"Name\": \"a\",\n        \"Extra\": 1\n    },\n    {\n        \"Name\": \"b\",\n        \"Extra\": 1\n    }\n]\n"
	if b.String() != want {
		t.Fatalf("indented:\n%s", b.String())
	}
	b.Reset()
	if err := writeInspect(&b, []string{"a"}, "json", get); err != nil || b.String() != "[{\"Name\":\"a\",\"Extra\":1}]\n" {
		t.Fatalf("json: %v %q", err, b.String())
	}
	b.Reset()
	if err := writeInspect(&b, []string{"a"}, "{{.Name}}-{{.Extra}}", get); err != nil || b.String() != "a-1\n" {
		t.Fatalf("template with raw fallback: %v %q", err, b.String())
	}
}
