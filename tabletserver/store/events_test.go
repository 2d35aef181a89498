package store

import (
	"fmt"
	"testing"
	"time"
)

// The event log keeps the most recent maxEvents events and returns a
// tablet's in the order they happened, across the ring's wrap.
func TestEventLogBoundedAndOrdered(t *testing.T) {
	var l eventLog
	base := time.Unix(0, 0)
	total := maxEvents + maxEvents/2
	for i := range total {
		l.add(tabletEvent{at: base.Add(time.Duration(i)), tablet: uint64(i % 2), what: fmt.Sprint(i)})
	}
	if len(l.buf) != maxEvents {
		t.Fatalf("log holds %d events, want the bound %d", len(l.buf), maxEvents)
	}
	evs := l.of(1)
	if len(evs) != maxEvents/2 {
		t.Fatalf("tablet 1 has %d events, want %d", len(evs), maxEvents/2)
	}
	first := total - maxEvents // the oldest event still held
	if first%2 == 0 {
		first++
	}
	for i, ev := range evs {
		if want := fmt.Sprint(first + 2*i); ev.what != want {
			t.Fatalf("event %d is %q, want %q (oldest first)", i, ev.what, want)
		}
	}
}
