package thriftgw

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw/filterlang"
)

// scanner is one open scanner. mu serialises its use: kvclient.Scanner is
// not safe for concurrent use.
type scanner struct {
	mu       sync.Mutex
	sc       *kvclient.Scanner // nil when there is nothing to scan
	cancel   context.CancelFunc
	owner    *owner    // the connection that opened it; set by add
	lastUsed time.Time // guarded by registry.mu
	busy     int       // guarded by registry.mu: calls in progress
	closed   bool      // guarded by mu
	// filter, if set, filters the rows in the gateway (guarded by mu).
	filter *filterlang.Scan
	// limit bounds the rows returned (0: none); returned counts them.
	limit, returned int
	// ended: the filter or the limit ended the scan.
	ended bool
	// sorted: Thrift1 rows as sortedColumns (TScan.sortColumns).
	sorted bool
}

// fetch returns the scan's next row as the filter leaves it; false at the
// end (of the rows, the filter or the limit). Errors are the Scanner's.
// Called with mu held.
func (s *scanner) fetch() (*kvclient.Row, bool) {
	for !s.ended && s.sc.Next() {
		r := s.sc.Row()
		if s.filter != nil {
			var stop bool
			if r, stop = s.filter.Row(r); stop {
				s.ended = true
				return nil, false
			}
			if r == nil {
				continue
			}
		}
		if s.limit > 0 {
			s.returned++
			s.ended = s.returned >= s.limit
		}
		return r, true
	}
	return nil, false
}

func (s *scanner) close() {
	// Cancel first: a call blocked in the scan (holding mu) returns now
	// instead of at its request timeout.
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		if s.sc != nil { // nil: a scan with nothing to read
			s.sc.Close()
		}
	}
}

// owner is one client connection's share of the registry. Its fields are
// guarded by registry.mu.
type owner struct {
	open   int  // scanners open on the connection
	closed bool // the connection has closed: no new scanners
}

// registry holds the gateway's open scanners. Ids are unique across the
// gateway, but a scanner belongs to the connection that opened it: only
// that connection can use or close it (a stray id from another client
// cannot disturb it), at most max are open per connection, and they are
// closed when the connection closes.
type registry struct {
	mu     sync.Mutex
	next   int32
	max    int
	byID   map[int32]*scanner
	closed bool
}

func newRegistry(max int) *registry {
	return &registry{max: max, byID: map[int32]*scanner{}}
}

// add registers a scanner for o and returns its id, or an error past the
// connection's limit.
func (r *registry) add(o *owner, s *scanner) (int32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, fmt.Errorf("gateway is shutting down")
	}
	if o.closed {
		return 0, fmt.Errorf("connection is closing")
	}
	if err := r.fullLocked(o); err != nil {
		return 0, err
	}
	for {
		r.next++
		if r.next <= 0 {
			r.next = 1
		}
		if _, taken := r.byID[r.next]; !taken {
			break
		}
	}
	s.owner = o
	s.lastUsed = time.Now()
	o.open++
	r.byID[r.next] = s
	return r.next, nil
}

// acquire returns o's scanner id and marks it busy (not expirable) until
// release.
func (r *registry) acquire(o *owner, id int32) (*scanner, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	if !ok || s.owner != o {
		return nil, false
	}
	s.busy++
	s.lastUsed = time.Now()
	return s, true
}

func (r *registry) release(s *scanner) {
	r.mu.Lock()
	s.busy--
	s.lastUsed = time.Now()
	r.mu.Unlock()
}

// remove unregisters o's scanner id; false if o has no such scanner.
func (r *registry) remove(o *owner, id int32) (*scanner, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	if !ok || s.owner != o {
		return nil, false
	}
	r.deleteLocked(id, s)
	return s, true
}

func (r *registry) deleteLocked(id int32, s *scanner) {
	delete(r.byID, id)
	s.owner.open--
}

// expire closes scanners idle for longer than idle.
func (r *registry) expire(now time.Time, idle time.Duration) {
	r.closeWhere(func(s *scanner) bool { return s.busy == 0 && now.Sub(s.lastUsed) > idle })
}

// closeOwner closes every scanner of a connection that has closed, and
// refuses it new ones.
func (r *registry) closeOwner(o *owner) {
	r.mu.Lock()
	o.closed = true
	n := o.open
	r.mu.Unlock()
	if n > 0 {
		r.closeWhere(func(s *scanner) bool { return s.owner == o })
	}
}

func (r *registry) closeAll() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.closeWhere(func(*scanner) bool { return true })
}

// closeWhere unregisters and closes the scanners matching pred, which runs
// under r.mu.
func (r *registry) closeWhere(pred func(*scanner) bool) {
	var dead []*scanner
	r.mu.Lock()
	for id, s := range r.byID {
		if pred(s) {
			r.deleteLocked(id, s)
			dead = append(dead, s)
		}
	}
	r.mu.Unlock()
	for _, s := range dead {
		s.close()
	}
}

// full returns an error when o can open no more scanners.
func (r *registry) full(o *owner) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fullLocked(o)
}

func (r *registry) fullLocked(o *owner) error {
	if o.open >= r.max {
		return fmt.Errorf("too many open scanners on this connection: at most %d per connection; close scanners with closeScanner (idle ones expire) or use another connection", r.max)
	}
	return nil
}

// len returns the number of open scanners across the gateway.
func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}
