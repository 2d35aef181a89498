package store

import (
	"hash"
	"io"
	"runtime"
)

// Background loops that burn CPU over a whole file without an admission
// chunk in between (the leader hashing and validating a staged SST, every
// replica hashing it again before the ingest) yield the processor every
// yieldEvery bytes. The Go runtime preempts a running goroutine only after
// 10ms, so on a store with two cores a 16 MiB hash or validation held one
// of them for 10ms at a time while foreground requests waited to be
// scheduled. The work costs the same CPU; it no longer comes in slices
// long enough to show in the foreground's tail latency. (CockroachDB's
// elastic work yields on a CPU-time grant for the same reason.)
const yieldEvery = 64 << 10

// cpuYield lets the scheduler run other goroutines before a background
// loop goes on.
func (s *Store) cpuYield() {
	if k := s.opts.Knobs; k != nil && k.OnCPUYield != nil {
		k.OnCPUYield()
	}
	runtime.Gosched()
}

// hashYielding writes all of r into h, yielding every yieldEvery bytes.
func (s *Store) hashYielding(h hash.Hash, r io.Reader) error {
	buf := make([]byte, yieldEvery)
	for {
		n, err := io.ReadFull(r, buf)
		h.Write(buf[:n])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
		s.cpuYield()
	}
}

// sumYielding returns the sum under h of data, yielding every yieldEvery
// bytes.
func (s *Store) sumYielding(h hash.Hash, data []byte) []byte {
	for len(data) > 0 {
		n := min(len(data), yieldEvery)
		h.Write(data[:n])
		data = data[n:]
		if len(data) > 0 {
			s.cpuYield()
		}
	}
	return h.Sum(nil)
}
