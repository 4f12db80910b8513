package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/labstack/echo/v4"
	"github.com/moby/moby/api/types/events"
)

// DefaultSubscriberBuffer is how many live events may queue for one
// subscriber before it counts as too slow and is disconnected.
const DefaultSubscriberBuffer = 1024

// ErrSlowSubscriber ends a subscription whose reader fell so far behind
// that its buffer filled. Publishers never wait for readers.
var ErrSlowSubscriber = errors.New("events subscriber too slow: buffer full")

// EventMessage is an event as API 1.41 clients read it: the moby message
// plus the legacy status/id/from fields dockerd still fills for container
// and image events.
type EventMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

// Events is the daemon-wide event bus: pipelines publish, /events streams.
// It keeps the last N events so `since` can replay them.
type Events struct {
	mu        sync.Mutex
	ring      []EventMessage
	next      int // ring slot the next event goes to
	full      bool
	subs      map[*Subscription]struct{}
	subBuffer int
}

// NewEvents returns a bus remembering the last size events (at least 1).
func NewEvents(size int) *Events {
	if size < 1 {
		size = 1
	}
	return &Events{
		ring:      make([]EventMessage, size),
		subs:      map[*Subscription]struct{}{},
		subBuffer: DefaultSubscriberBuffer,
	}
}

// Publish records msg and hands it to every matching subscriber without
// blocking. Unset fields are filled as dockerd does: time and timeNano from
// the clock, scope "local", and the legacy status/id/from for container and
// image events. Pipelines take it through their own one-method interface
// (Publish(events.Message)), so they need not import httpapi.
func (e *Events) Publish(msg events.Message) { e.publish(msg) }

// publish is Publish returning the event as recorded.
func (e *Events) publish(msg events.Message) EventMessage {
	e.mu.Lock()
	defer e.mu.Unlock()

	// The clock is read under the lock so the ring stays in time order.
	now := time.Now()
	switch {
	case msg.Time == 0 && msg.TimeNano == 0:
		msg.Time, msg.TimeNano = now.Unix(), now.UnixNano()
	case msg.TimeNano == 0:
		msg.TimeNano = msg.Time * int64(time.Second)
	case msg.Time == 0:
		msg.Time = msg.TimeNano / int64(time.Second)
	}
	if msg.Scope == "" {
		msg.Scope = "local"
	}
	// A copy: the ring outlives the caller's map.
	msg.Actor.Attributes = maps.Clone(msg.Actor.Attributes)
	if msg.Actor.Attributes == nil {
		msg.Actor.Attributes = map[string]string{}
	}
	ev := EventMessage{Message: msg}
	switch msg.Type {
	case events.ContainerEventType:
		ev.Status, ev.ID, ev.From = string(msg.Action), msg.Actor.ID, msg.Actor.Attributes["image"]
	case events.ImageEventType:
		ev.Status, ev.ID = string(msg.Action), msg.Actor.ID
	}

	e.ring[e.next] = ev
	e.next = (e.next + 1) % len(e.ring)
	if e.next == 0 {
		e.full = true
	}

	for sub := range e.subs {
		if !sub.wants(ev) {
			continue
		}
		select {
		case sub.ch <- ev:
		default:
			e.endLocked(sub, ErrSlowSubscriber)
		}
	}
	return ev
}

// Subscribers is the number of live subscriptions (NEventsListener).
func (e *Events) Subscribers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// Subscription delivers events in order: first the remembered ones at or
// after since, then live ones. Its channel closes when ctx ends, when until
// passes, on Close, or when the reader is too slow (Err tells which).
type Subscription struct {
	e      *Events
	ch     chan EventMessage
	filter Filters
	since  int64 // UnixNano, 0 = none
	until  int64 // UnixNano, 0 = none
	stop   chan struct{}
	once   sync.Once
	ended  bool // guarded by e.mu
	err    error
}

// Subscribe starts a subscription. With a zero since nothing past is
// replayed; with an until already past only past events are sent and the
// channel is closed at once (dockerd's behaviour for both).
func (e *Events) Subscribe(ctx context.Context, filter Filters, since, until time.Time) *Subscription {
	sub := &Subscription{e: e, filter: filter, stop: make(chan struct{})}
	if !since.IsZero() {
		sub.since = since.UnixNano()
	}
	if !until.IsZero() {
		sub.until = until.UnixNano()
	}

	e.mu.Lock()
	var past []EventMessage
	if !since.IsZero() {
		past = e.pastLocked(sub)
	}
	onlyPast := !until.IsZero() && until.Before(time.Now())
	size := len(past)
	if !onlyPast {
		size += e.subBuffer
	}
	sub.ch = make(chan EventMessage, size)
	for _, ev := range past {
		sub.ch <- ev
	}
	if onlyPast {
		sub.ended = true
		close(sub.ch)
		e.mu.Unlock()
		return sub
	}
	e.subs[sub] = struct{}{}
	e.mu.Unlock()

	go sub.watch(ctx, until)
	return sub
}

// pastLocked returns the remembered events the subscription wants, oldest
// first.
func (e *Events) pastLocked(sub *Subscription) []EventMessage {
	var out []EventMessage
	n, start := e.next, 0
	if e.full {
		n, start = len(e.ring), e.next
	}
	for i := 0; i < n; i++ {
		ev := e.ring[(start+i)%len(e.ring)]
		if sub.wants(ev) {
			out = append(out, ev)
		}
	}
	return out
}

func (e *Events) endLocked(sub *Subscription, err error) {
	if sub.ended {
		return
	}
	sub.ended = true
	sub.err = err
	delete(e.subs, sub)
	close(sub.ch)
}

func (sub *Subscription) watch(ctx context.Context, until time.Time) {
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	select {
	case <-ctx.Done():
	case <-deadline:
	case <-sub.stop:
	}
	sub.e.mu.Lock()
	sub.e.endLocked(sub, nil)
	sub.e.mu.Unlock()
}

// C is the event channel.
func (sub *Subscription) C() <-chan EventMessage { return sub.ch }

// Err is why the channel closed: nil for ctx, until or Close;
// ErrSlowSubscriber when the reader fell behind.
func (sub *Subscription) Err() error {
	sub.e.mu.Lock()
	defer sub.e.mu.Unlock()
	return sub.err
}

// Close ends the subscription.
func (sub *Subscription) Close() {
	sub.once.Do(func() { close(sub.stop) })
	sub.e.mu.Lock()
	sub.e.endLocked(sub, nil)
	sub.e.mu.Unlock()
}

func (sub *Subscription) wants(ev EventMessage) bool {
	if sub.since != 0 && ev.TimeNano < sub.since {
		return false
	}
	if sub.until != 0 && ev.TimeNano > sub.until {
		return false
	}
	return eventMatches(sub.filter, ev.Message)
}

// eventMatches is dockerd's daemon/events Filter.Include: every present
// filter key must match.
func eventMatches(f Filters, ev events.Message) bool {
	return matchEventAction(f, ev) &&
		f.ExactMatch("type", string(ev.Type)) &&
		f.ExactMatch("scope", ev.Scope) &&
		fuzzyMatchName(f, ev, events.DaemonEventType) &&
		fuzzyMatchName(f, ev, events.ContainerEventType) &&
		fuzzyMatchName(f, ev, events.PluginEventType) &&
		fuzzyMatchName(f, ev, events.VolumeEventType) &&
		fuzzyMatchName(f, ev, events.NetworkEventType) &&
		matchImage(f, ev) &&
		fuzzyMatchName(f, ev, events.NodeEventType) &&
		fuzzyMatchName(f, ev, events.ServiceEventType) &&
		fuzzyMatchName(f, ev, events.SecretEventType) &&
		fuzzyMatchName(f, ev, events.ConfigEventType) &&
		f.MatchKVList("label", ev.Actor.Attributes)
}

// matchEventAction compares "event" filters with the action; the actions
// that carry a suffix ("exec_start: sh -c …", "health_status: healthy")
// match by prefix when the filter names them bare.
func matchEventAction(f Filters, ev events.Message) bool {
	for _, v := range f.Get("event") {
		switch v {
		case "health_status", "exec_create", "exec_start":
			return f.FuzzyMatch("event", string(ev.Action))
		}
	}
	return f.ExactMatch("event", string(ev.Action))
}

// fuzzyMatchName: a filter keyed by the event's type ("container=web")
// matches the actor's ID by prefix or its name attribute.
func fuzzyMatchName(f Filters, ev events.Message, key events.Type) bool {
	return f.FuzzyMatch(string(key), ev.Actor.ID) || f.FuzzyMatch(string(key), ev.Actor.Attributes["name"])
}

// matchImage matches image events by ID or name and container events by the
// image they were created from, with or without tag.
func matchImage(f Filters, ev events.Message) bool {
	attr := "image"
	if ev.Type == events.ImageEventType {
		attr = "name"
	}
	name := ev.Actor.Attributes[attr]
	return f.ExactMatch("image", ev.Actor.ID) ||
		f.ExactMatch("image", name) ||
		f.ExactMatch("image", stripTag(ev.Actor.ID)) ||
		f.ExactMatch("image", stripTag(name))
}

func stripTag(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarName(ref)
}

var unixTimestamp = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// ParseEventTime parses `since`/`until`. The docker CLI always sends unix
// seconds with an optional fraction ("1700000000.123456789"), having
// converted RFC 3339 times and durations itself; those forms are accepted
// here too for other clients (a duration counts back from now).
func ParseEventTime(value string, now time.Time) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	if unixTimestamp.MatchString(value) {
		secStr, fracStr, _ := strings.Cut(value, ".")
		sec, err := strconv.ParseInt(secStr, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("parse timestamp %q: %w", value, err)
		}
		var nsec int64
		if fracStr != "" {
			if len(fracStr) > 9 {
				fracStr = fracStr[:9]
			}
			n, err := strconv.ParseInt(fracStr, 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parse timestamp %q: %w", value, err)
			}
			nsec = n * int64(math.Pow10(9-len(fracStr)))
		}
		if strings.HasPrefix(secStr, "-") {
			nsec = -nsec
		}
		return time.Unix(sec, nsec), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, value); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(value); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want unix seconds[.nanoseconds], RFC 3339 or a duration", value)
}

// getEvents streams GET /events: headers flushed at once, one JSON object
// per line, flushed per event; ends at until.
func (s *Server) getEvents(c echo.Context) error {
	q := c.QueryParams()
	now := time.Now()
	since, err := ParseEventTime(q.Get("since"), now)
	if err != nil {
		return invalidArgument(err.Error())
	}
	until, err := ParseEventTime(q.Get("until"), now)
	if err != nil {
		return invalidArgument(err.Error())
	}
	if !until.IsZero() && until.Before(since) {
		return invalidArgument(fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until")))
	}
	filter, err := ParseFilters(q.Get("filters"))
	if err != nil {
		return err
	}

	ctx := c.Request().Context()
	sub := s.events.Subscribe(ctx, filter, since, until)
	defer sub.Close()

	stream, err := WriteJSONStream(c)
	if err != nil {
		return err
	}
	for ev := range sub.C() {
		if err := stream.Encode(ev); err != nil {
			return err
		}
	}
	if err := sub.Err(); err != nil {
		// A client that silently missed events would be worse than one
		// that sees its stream break and resubscribes with since.
		s.log.Warn("events stream dropped", "remote", c.Request().RemoteAddr, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}
