package thriftgw

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shaledb/shale/kvclient"
)

// scanner is one open scanner. mu serialises its use: kvclient.Scanner is
// not safe for concurrent use.
type scanner struct {
	mu       sync.Mutex
	sc       *kvclient.Scanner
	cancel   context.CancelFunc
	lastUsed time.Time // guarded by registry.mu
	busy     int       // guarded by registry.mu: calls in progress
	closed   bool      // guarded by mu
}

func (s *scanner) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.cancel()
		s.sc.Close()
	}
}

// registry holds the gateway's open scanners by id.
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

// add registers a scanner and returns its id, or an error past the limit.
func (r *registry) add(s *scanner) (int32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, fmt.Errorf("gateway is shutting down")
	}
	if err := r.fullLocked(); err != nil {
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
	s.lastUsed = time.Now()
	r.byID[r.next] = s
	return r.next, nil
}

// acquire returns the scanner and marks it busy (not expirable) until
// release.
func (r *registry) acquire(id int32) (*scanner, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	if ok {
		s.busy++
		s.lastUsed = time.Now()
	}
	return s, ok
}

func (r *registry) release(s *scanner) {
	r.mu.Lock()
	s.busy--
	s.lastUsed = time.Now()
	r.mu.Unlock()
}

// remove unregisters a scanner; false if the id is unknown.
func (r *registry) remove(id int32) (*scanner, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	delete(r.byID, id)
	return s, ok
}

// expire closes scanners idle for longer than idle.
func (r *registry) expire(now time.Time, idle time.Duration) {
	var dead []*scanner
	r.mu.Lock()
	for id, s := range r.byID {
		if s.busy == 0 && now.Sub(s.lastUsed) > idle {
			delete(r.byID, id)
			dead = append(dead, s)
		}
	}
	r.mu.Unlock()
	for _, s := range dead {
		s.close()
	}
}

func (r *registry) closeAll() {
	r.mu.Lock()
	r.closed = true
	all := make([]*scanner, 0, len(r.byID))
	for _, s := range r.byID {
		all = append(all, s)
	}
	r.byID = map[int32]*scanner{}
	r.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

// full returns an error when no scanner can be opened.
func (r *registry) full() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fullLocked()
}

func (r *registry) fullLocked() error {
	if len(r.byID) >= r.max {
		return fmt.Errorf("too many open scanners: the gateway allows %d at once; close scanners with closeScanner (idle ones expire)", r.max)
	}
	return nil
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}
