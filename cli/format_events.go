package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/moby/moby/api/types/events"
)

// rfc3339NanoFixed is docker's event time layout: always nine fractional
// digits, so the lines align.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// eventMessage is what an events --format template sees. It adds the
// fields that API 1.41 still sends and docker 28 still shows (status, id,
// from), rebuilt from Action and Actor exactly as dockerd fills them, so
// `{{json .}}` and `{{.Status}}` print what they print with docker.
type eventMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`

	Type   events.Type
	Action events.Action
	Actor  events.Actor
	Scope  string `json:"scope,omitempty"`

	Time     int64 `json:"time,omitempty"`
	TimeNano int64 `json:"timeNano,omitempty"`
}

func newEventMessage(m events.Message) eventMessage {
	e := eventMessage{
		Type: m.Type, Action: m.Action, Actor: m.Actor, Scope: m.Scope,
		Time: m.Time, TimeNano: m.TimeNano,
	}
	switch m.Type {
	case events.ContainerEventType:
		e.Status, e.ID, e.From = string(m.Action), m.Actor.ID, m.Actor.Attributes["image"]
	case events.ImageEventType:
		e.Status, e.ID = string(m.Action), m.Actor.ID
	}
	return e
}

// eventsTemplate parses --format ("" for docker's line format, "json"
// for {{json .}}) and tries it once on an empty event, so a template that
// names a missing field fails before streaming starts.
func eventsTemplate(format string) (*template.Template, error) {
	switch format {
	case "":
		return nil, nil
	case jsonFormatKey:
		format = jsonFormat
	}
	t, err := parseTemplateRaw(format)
	if err != nil {
		return nil, err
	}
	return t, t.Execute(io.Discard, &eventMessage{})
}

// writeEvent prints one event with tmpl, or in docker's default layout:
//
//	2026-01-02T03:04:05.000000000Z image tag sha256:… (name=busybox:v1)
func writeEvent(out io.Writer, m events.Message, tmpl *template.Template) error {
	if tmpl != nil {
		if err := tmpl.Execute(out, newEventMessage(m)); err != nil {
			return err
		}
		_, err := out.Write([]byte{'\n'})
		return err
	}
	var b strings.Builder
	if m.TimeNano != 0 {
		b.WriteString(time.Unix(0, m.TimeNano).Format(rfc3339NanoFixed) + " ")
	} else if m.Time != 0 {
		b.WriteString(time.Unix(m.Time, 0).Format(rfc3339NanoFixed) + " ")
	}
	fmt.Fprintf(&b, "%s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, k+"="+m.Actor.Attributes[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(out, b.String())
	return err
}
