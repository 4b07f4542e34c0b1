package throttle

import (
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestBackoffDoublesAndForgets(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := New(Config{PerAccountIP: 2, Base: time.Second, Max: 8 * time.Second, Forget: time.Hour}, clk.now)
	for range 2 {
		if _, ok := l.Allow("ip", "acct"); !ok {
			t.Fatal("free attempt refused")
		}
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		wait, ok := l.Allow("ip", "acct")
		if ok || wait != want {
			t.Fatalf("wait %v (allowed %v), want %v", wait, ok, want)
		}
		clk.t = clk.t.Add(wait)
		if _, ok := l.Allow("ip", "acct"); !ok {
			t.Fatalf("refused after waiting %v", wait)
		}
	}
	clk.t = clk.t.Add(time.Hour + time.Second)
	if _, ok := l.Allow("ip", "acct"); !ok {
		t.Fatal("failures not forgotten")
	}
	if _, ok := l.Allow("ip", "acct"); !ok {
		t.Fatal("failures not forgotten")
	}
}

func TestSuccessAndCancelRefund(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := New(Config{PerAccountIP: 2, PerIP: 3}, clk.now)
	for range 10 {
		if _, ok := l.Allow("ip", "a"); !ok {
			t.Fatal("refused though every attempt was cancelled")
		}
		l.Cancel("ip", "a")
	}
	for range 10 {
		if _, ok := l.Allow("ip", "a"); !ok {
			t.Fatal("refused though every attempt succeeded")
		}
		l.Success("ip", "a")
	}
	// Per-IP: failures over several accounts add up.
	for i := range 3 {
		if _, ok := l.Allow("ip", fmt.Sprint("acct", i)); !ok {
			t.Fatal("free attempt refused")
		}
	}
	if _, ok := l.Allow("ip", "other"); ok {
		t.Fatal("per-IP limit not applied")
	}
	if _, ok := l.Allow("ip2", "other"); !ok {
		t.Fatal("another IP refused")
	}
}

// TestTableIsBounded: a flood of distinct keys never grows the tables.
func TestTableIsBounded(t *testing.T) {
	l := New(Config{Entries: 1024}, nil)
	size := func() int {
		n := 0
		for _, tb := range []*table{&l.ip, &l.pair, &l.account} {
			for i := range tb.shards {
				n += len(tb.shards[i].sets) * ways
			}
		}
		return n
	}
	before := size()
	for i := range 100000 {
		l.Allow(fmt.Sprint("10.", i), "a")
	}
	if size() != before || before > 3*1024*2 {
		t.Fatalf("tables grew from %d to %d entries", before, size())
	}
}
