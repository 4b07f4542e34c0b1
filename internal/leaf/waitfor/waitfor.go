// Package waitfor lets tests wait for a condition that no event signals
// (another process's state, a port opening, a database lock, the wall
// clock reaching a key's activation time) by checking it at an interval,
// instead of each test sleeping in a loop of its own.
package waitfor

import (
	"testing"
	"time"
)

// Every is how often Until checks, unless it is given another interval.
const Every = 5 * time.Millisecond

// Until checks cond every interval (Every when 0) until it holds, and
// returns how long that took; after timeout it fails the test, naming
// what it waited for.
func Until(t testing.TB, what string, timeout, interval time.Duration, cond func() bool) time.Duration {
	t.Helper()
	if interval <= 0 {
		interval = Every
	}
	start := time.Now()
	if cond() {
		return time.Since(start)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	expired := time.NewTimer(timeout)
	defer expired.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return time.Since(start)
			}
		case <-expired.C:
			if cond() {
				return time.Since(start)
			}
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
			return 0
		}
	}
}
