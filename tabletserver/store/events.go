package store

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// maxEvents bounds the store's tablet event log: about 200 KiB at most.
const maxEvents = 2048

// tabletEvent is one change in a replica's life on this store: created by a
// split or a snapshot, a membership change applied, frozen for a merge,
// merged, rolled back, destroyed and why. CockroachDB keeps the same
// history durably (system.rangelog); here it is a bounded in-memory ring,
// enough to tell after the fact why a tablet stopped serving.
type tabletEvent struct {
	at     time.Time
	tablet uint64
	what   string
}

// eventLog is a ring of the store's most recent tablet events.
type eventLog struct {
	mu   sync.Mutex
	buf  []tabletEvent
	next int // where the next event goes once buf is full
}

func (l *eventLog) add(ev tabletEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) < maxEvents {
		l.buf = append(l.buf, ev)
		return
	}
	l.buf[l.next] = ev
	l.next = (l.next + 1) % maxEvents
}

// of returns tablet's events, oldest first.
func (l *eventLog) of(tablet uint64) []tabletEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []tabletEvent
	for i := range l.buf {
		ev := l.buf[(l.next+i)%len(l.buf)]
		if ev.tablet == tablet {
			out = append(out, ev)
		}
	}
	return out
}

// event records a change in tablet's life on this store.
func (s *Store) event(tablet uint64, format string, args ...any) {
	s.events.add(tabletEvent{at: s.opts.Clock.Now(), tablet: tablet, what: fmt.Sprintf(format, args...)})
}

// TabletEvents describes, oldest first, the recent changes in the life of
// this store's replica of tablet (one per line).
func (s *Store) TabletEvents(tablet uint64) string {
	var b strings.Builder
	for _, ev := range s.events.of(tablet) {
		fmt.Fprintf(&b, "%s %s\n", ev.at.Format("15:04:05.000"), ev.what)
	}
	return b.String()
}
