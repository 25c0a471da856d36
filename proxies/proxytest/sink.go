package proxytest

import (
	"context"
	"sync"

	"github.com/glance-go/glance-go/proxies/notifier"
)

// Sink is a notifier.Sink that records every event. Set Err to make Emit
// fail (the event is still recorded).
type Sink struct {
	Err    error
	mu     sync.Mutex
	events []notifier.Event
}

var _ notifier.Sink = (*Sink)(nil)

// Emit implements notifier.Sink.
func (s *Sink) Emit(_ context.Context, ev notifier.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return s.Err
}

// Events returns the recorded events, oldest first.
func (s *Sink) Events() []notifier.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notifier.Event(nil), s.events...)
}

// Types returns the event types recorded, oldest first, each with its
// priority when it is not INFO ("image.upload:ERROR").
func (s *Sink) Types() []string {
	var out []string
	for _, ev := range s.Events() {
		t := ev.EventType
		if ev.Priority != notifier.PriorityInfo {
			t += ":" + ev.Priority
		}
		out = append(out, t)
	}
	return out
}

// Reset forgets the recorded events.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = nil
}
