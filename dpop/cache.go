package dpop

import (
	"sync"
	"time"
)

// replayCache remembers recent proof ids in memory, bounded: when full it
// drops expired entries, then arbitrary ones down to three quarters. Dropping is safe because the
// shared replay record, when configured, is consulted for every new id.
type replayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time // id -> expiry
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[string]time.Time)}
}

// add records id and reports whether it was new (or its entry had expired).
func (c *replayCache) add(id string, expires, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[id]; ok && now.Before(exp) {
		return false
	}
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		// Drop a quarter at once so a full cache costs one sweep per
		// max/4 insertions, not one per insertion.
		for k := range c.seen {
			if len(c.seen) <= c.max*3/4 {
				break
			}
			delete(c.seen, k)
		}
	}
	c.seen[id] = expires
	return true
}

func (c *replayCache) remove(id string) {
	c.mu.Lock()
	delete(c.seen, id)
	c.mu.Unlock()
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
