package keystone

import (
	"sync"
	"time"
)

// cache holds validated tokens by the SHA-256 of the token, so that no
// token is kept in memory longer than the request that carried it. An entry
// lives for ttl or until the token expires, whichever comes first; when the
// cache is full the oldest entry makes room. Like auth_token's cache, it
// answers for a token revoked in Keystone until the entry ends.
type cache struct {
	ttl  time.Duration // <= 0: nothing is cached
	size int

	mu    sync.Mutex
	items map[[32]byte]cached
	order [][32]byte // keys in the order they were added, oldest first; may hold stale keys
}

type cached struct {
	tok   *Token
	until time.Time
}

func newCache(size int, ttl time.Duration) *cache {
	return &cache{ttl: ttl, size: size, items: map[[32]byte]cached{}}
}

// get returns the cached token for key, if its entry is still alive.
func (c *cache) get(key [32]byte, now time.Time) (*Token, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		delete(c.items, key)
		return nil, false
	}
	return e.tok, true
}

// put caches t under key until now+ttl or t's expiry.
func (c *cache) put(key [32]byte, t *Token, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	until := now.Add(c.ttl)
	if t.ExpiresAt.Before(until) {
		until = t.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; !ok {
		for len(c.items) >= c.size && len(c.order) > 0 {
			oldest := c.order[0]
			c.order = c.order[1:]
			delete(c.items, oldest)
		}
		c.order = append(c.order, key)
	}
	c.items[key] = cached{tok: t, until: until}
	if len(c.order) > 2*c.size {
		c.compact()
	}
}

// compact drops the keys of order whose entries are gone.
func (c *cache) compact() {
	seen := make(map[[32]byte]bool, len(c.items))
	kept := c.order[:0]
	for _, k := range c.order {
		if _, ok := c.items[k]; ok && !seen[k] {
			seen[k] = true
			kept = append(kept, k)
		}
	}
	c.order = kept
}

// len returns the number of entries, alive or not yet swept.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
