package raftlog

// SetCacheLimit changes the entry cache's byte cap, for tests of the cap.
func (s *Storage) SetCacheLimit(n uint64) {
	s.mu.Lock()
	s.mu.cache.limit = n
	s.mu.Unlock()
}

// CachedRange returns the cached indexes [first, last], or 0, 0 when empty.
func (s *Storage) CachedRange() (uint64, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.cache.ents) == 0 {
		return 0, 0
	}
	return s.mu.cache.first(), s.mu.cache.last()
}
