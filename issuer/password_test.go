package issuer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordHashFormats(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hash string
		ok   bool
	}{
		{h, true},
		{"$argon2id$v=19$m=65536,t=2,p=2$c2FsdA$" + "AAAA", false},                        // key too short
		{"$argon2id$v=19$m=4294967295,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", false}, // absurd memory
		{"$argon2i$v=19$m=65536,t=2,p=2$c2FsdA$aGFzaA", false},
		{"plaintext", false},
		{"$2a$10$short", false},
	} {
		if err := CheckHashFormat(tc.hash); (err == nil) != tc.ok {
			t.Errorf("CheckHashFormat(%.30q) = %v", tc.hash, err)
		}
	}
	if ok, err := VerifyPassword(h, string(make([]byte, maxPasswordLen+1))); ok || err != nil {
		t.Fatal("an over-long password must simply fail")
	}
}

// TestHashBudget: checks run up to the limit, wait up to the queue, and
// beyond that are refused at once; a slot freed goes to the first waiter.
func TestHashBudget(t *testing.T) {
	b := NewHashBudget(1, 1, time.Hour)
	release := make(chan struct{})
	running := make(chan struct{})
	go b.Do(context.Background(), func() { close(running); <-release })
	<-running
	waited := make(chan error, 1)
	go func() { waited <- b.Do(context.Background(), func() {}) }()
	// Wait (polling, bounded) until the second check is queued.
	queued := func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 }
	tick, deadline := time.NewTicker(time.Millisecond), time.Now().Add(10*time.Second)
	for !queued() {
		if time.Now().After(deadline) {
			t.Fatal("the second check never queued")
		}
		<-tick.C
	}
	tick.Stop()
	ran := false
	if err := b.Do(context.Background(), func() { ran = true }); !errors.Is(err, ErrBusy) || ran {
		t.Fatalf("a check beyond limit and queue: %v (ran %v), want ErrBusy without running", err, ran)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	close(release)
	if err := <-waited; err != nil {
		t.Fatalf("the queued check: %v", err)
	}
	if err := b.Do(ctx, func() {}); err != nil {
		t.Fatalf("a free slot with a cancelled context still runs: %v", err)
	}
	if b.running != 0 || len(b.waiters) != 0 {
		t.Fatalf("slots leaked: running %d, waiting %d", b.running, len(b.waiters))
	}
	if l, _ := NewHashBudget(0, 0, 0).Limits(); l != DefaultHashConcurrency() || l < 1 {
		t.Fatalf("default limit %d", l)
	}
}

// TestDefaultHashParams: new hashes use OWASP's argon2id parameters.
func TestDefaultHashParams(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("new hash %s", h)
	}
	if ok, err := VerifyPassword(h, "pw"); !ok || err != nil {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if _, err := HashPasswordWith(HashParams{Memory: 1 << 21, Time: 1, Threads: 1}, "pw"); err == nil {
		t.Fatal("absurd memory accepted")
	}
}

// TestDummyHashMatchesClass: a dummy has the algorithm and parameters of
// the class it was made for.
func TestDummyHashMatchesClass(t *testing.T) {
	argon, err := HashPasswordWith(HashParams{Memory: 64, Time: 3, Threads: 1}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, real := range []string{argon, string(bc), "$2y$" + string(bc[4:])} {
		class := HashClass(real)
		d, err := DummyHash(class)
		if err != nil {
			t.Fatal(err)
		}
		if HashClass(d) != class || d == real {
			t.Errorf("dummy %s for %s: class %q, want %q", d, real, HashClass(d), class)
		}
		if ok, err := VerifyPassword(d, "pw"); ok || err != nil {
			t.Errorf("dummy %s matched: %v %v", d, ok, err)
		}
	}
}
