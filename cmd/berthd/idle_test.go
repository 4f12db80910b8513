package main

import (
	"context"
	"testing"
	"time"
)

// TestIdleWatch: memory goes back once after each burst of requests, only
// when nothing is under way and a whole tick passed without a request.
func TestIdleWatch(t *testing.T) {
	var w idleWatch
	steps := []struct {
		what     string
		inflight int64
		ended    uint64
		want     bool
	}{
		{"daemon just started", 0, 0, false},
		{"still nothing", 0, 0, false},
		{"a stream under way, requests ending around it", 1, 3, false},
		{"the stream still runs", 1, 3, false},
		{"the stream ended in this tick", 0, 4, false},
		{"a quiet tick after the burst", 0, 4, true},
		{"idle on", 0, 4, false},
		{"idle on and on", 0, 4, false},
		{"requests again", 0, 5, false},
		{"and again", 0, 7, false},
		{"quiet again", 0, 7, true},
		{"a request just began", 1, 7, false},
		{"it ended; nothing new ended before it", 0, 8, false},
		{"quiet", 0, 8, true},
	}
	for _, s := range steps {
		if got := w.due(s.inflight, s.ended); got != s.want {
			t.Fatalf("%s (inflight %d, ended %d): due %v, want %v", s.what, s.inflight, s.ended, got, s.want)
		}
	}
}

type fakeActivity struct{ inflight, ended int }

func (f fakeActivity) Activity() (int64, uint64) { return int64(f.inflight), uint64(f.ended) }

// TestReturnMemoryWhenIdleReleases: the loop calls release when due and
// stops with its context.
func TestReturnMemoryWhenIdleReleases(t *testing.T) {
	ticks := make(chan time.Time)
	released := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		returnMemoryWhenIdle(ctx, fakeActivity{ended: 2}, ticks, func() { released <- struct{}{} })
		close(done)
	}()
	ticks <- time.Now() // sees 2 ended: not quiet yet
	ticks <- time.Now() // quiet: releases
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("no release after a quiet tick")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop outlived its context")
	}
}
