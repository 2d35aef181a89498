package store

import "context"

// scanCheckKeys is how many keys a long scan of a tablet (GC, a
// consistency check's digest, an export, the split-key search) reads
// between looks at its context and the store's shutdown. A scan may read
// millions of keys and, under -race and CPU starvation, take many seconds
// between its other waits; Close gives background tasks CloseTimeout and
// otherwise leaves the engine open (store.go), so a scan must notice
// shutdown within a few hundred keys, not at its end.
const scanCheckKeys = 256

// scanCheck tells a long scan when to stop.
type scanCheck struct {
	s   *Store
	ctx context.Context
	n   int
}

func (s *Store) newScanCheck(ctx context.Context) *scanCheck {
	return &scanCheck{s: s, ctx: ctx}
}

// err counts one key; every scanCheckKeys keys it returns ctx's error, or
// ErrClosed once the store began shutting down, or nil.
func (c *scanCheck) err() error {
	if c.n++; c.n%scanCheckKeys != 0 {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	select {
	case <-c.s.stopper.ShouldQuiesce():
		return ErrClosed
	default:
		return nil
	}
}
