package waitfor

import (
	"testing"
	"time"
)

// TestUntil: it returns once the condition holds, checking it again at
// each interval, and fails the test (through Fatalf) when it never does.
func TestUntil(t *testing.T) {
	n := 0
	Until(t, "the third check", time.Minute, time.Millisecond, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("condition checked %d times, want 3", n)
	}
	ft := &fatalT{TB: t}
	func() {
		defer func() { _ = recover() }()
		Until(ft, "never", 5*time.Millisecond, time.Millisecond, func() bool { return false })
	}()
	if !ft.failed {
		t.Fatal("a condition that never held did not fail the test")
	}
}

// fatalT records Fatalf instead of ending the test.
type fatalT struct {
	testing.TB
	failed bool
}

func (f *fatalT) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fatalT) Helper()               {}
