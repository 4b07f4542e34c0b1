package issuer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// HashBudget bounds the password hashes (argon2id, bcrypt) computed at
// once, so a login flood can neither take every CPU from the guard nor grow
// memory without bound: at most Limit run, at most Queue wait, and the rest
// are refused at once with ErrBusy. Each argon2id check holds its m KiB
// while it runs, so the memory it can take is Limit × m (with the defaults
// on 2 CPUs: 1 × 19 MiB for new hashes, 1 × 64 MiB for older ones).
type HashBudget struct {
	mu      sync.Mutex
	limit   int
	queue   int
	maxWait time.Duration
	running int
	waiters []chan struct{}
}

// DefaultHashConcurrency is half the CPUs, at least one, so the guard
// always keeps CPU while logins are hashed.
func DefaultHashConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// DefaultHashQueue is how many checks may wait per running one.
const DefaultHashQueue = 4

// DefaultHashWait is the longest a check waits for its turn.
const DefaultHashWait = 2 * time.Second

// ErrBusy says the hashing budget is spent: answer 503 with Retry-After.
var ErrBusy = errors.New("too many sign-ins are being checked; try again shortly")

// NewHashBudget allows limit checks at once and queue waiting (defaults
// when ≤ 0: DefaultHashConcurrency and DefaultHashQueue per slot).
func NewHashBudget(limit, queue int, maxWait time.Duration) *HashBudget {
	b := &HashBudget{}
	b.Configure(limit, queue, maxWait)
	return b
}

// Configure changes the bounds; running and waiting checks keep their turn.
func (b *HashBudget) Configure(limit, queue int, maxWait time.Duration) {
	if limit <= 0 {
		limit = DefaultHashConcurrency()
	}
	if queue < 0 {
		queue = 0
	} else if queue == 0 {
		queue = DefaultHashQueue * limit
	}
	if maxWait <= 0 {
		maxWait = DefaultHashWait
	}
	b.mu.Lock()
	b.limit, b.queue, b.maxWait = limit, queue, maxWait
	b.handOff()
	b.mu.Unlock()
}

// Limits returns the number of checks that may run and wait at once.
func (b *HashBudget) Limits() (limit, queue int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit, b.queue
}

// Running is how many checks hold a slot now.
func (b *HashBudget) Running() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

// acquire takes a slot, waiting in the bounded queue; ErrBusy when the
// queue is full or the wait too long.
func (b *HashBudget) acquire(ctx context.Context) error {
	b.mu.Lock()
	if b.running < b.limit && len(b.waiters) == 0 {
		b.running++
		b.mu.Unlock()
		return nil
	}
	if len(b.waiters) >= b.queue {
		b.mu.Unlock()
		return ErrBusy
	}
	ch := make(chan struct{})
	b.waiters = append(b.waiters, ch)
	wait := b.maxWait
	b.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	var err error
	select {
	case <-ch:
		return nil
	case <-t.C:
		err = ErrBusy
	case <-ctx.Done():
		err = fmt.Errorf("waiting to check a password: %w", ctx.Err())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, w := range b.waiters {
		if w == ch {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			return err
		}
	}
	// Handed a slot while giving up: pass it on.
	b.running--
	b.handOff()
	return err
}

func (b *HashBudget) release() {
	b.mu.Lock()
	b.running--
	b.handOff()
	b.mu.Unlock()
}

// handOff gives free slots to waiters in order; the caller holds mu.
func (b *HashBudget) handOff() {
	for b.running < b.limit && len(b.waiters) > 0 {
		close(b.waiters[0])
		b.waiters = b.waiters[1:]
		b.running++
	}
}

// Do runs f within the budget.
func (b *HashBudget) Do(ctx context.Context, f func()) error {
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()
	f()
	return nil
}
