package store

import (
	"os"
	"time"
)

// RemoveStagedForTest deletes the staged and kept copies of a file, as a
// lost disk block or an operator would.
func (s *Store) RemoveStagedForTest(sum []byte) {
	_ = s.fs.Remove(s.ingest.path(sum))
	_ = s.fs.Remove(s.ingest.keptPath(sum))
}

// StageForTest stages data under sum, as a fetch would.
func (s *Store) StageForTest(sum, data []byte) error { return s.stageFetched(sum, data) }

// AgeStagedForTest sets a staged file's modification time age ago (the
// test stores use the real file system).
func (s *Store) AgeStagedForTest(sum []byte, age time.Duration) error {
	t := s.opts.Clock.Now().Add(-age)
	return os.Chtimes(s.ingest.path(sum), t, t)
}

// HasStagedForTest reports whether the staged file sum is present.
func (s *Store) HasStagedForTest(sum []byte) bool {
	_, err := s.fs.Stat(s.ingest.path(sum))
	return err == nil
}

// ApplyBlockedForTest reports whether the tablet's replica waits for a
// staged file.
func (s *Store) ApplyBlockedForTest(tabletID uint64) bool {
	r := s.getReplica(tabletID)
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.applyBlocked
}
