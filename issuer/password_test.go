package issuer

import (
	"context"
	"errors"
	"testing"
	"time"
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

// TestPasswordLimiter: checks go through with a free slot, and a request
// that cannot get one stops waiting when it is cancelled.
func TestPasswordLimiter(t *testing.T) {
	h, _ := HashPassword("pw")
	l := NewPasswordLimiter(1)
	if ok, err := l.Verify(context.Background(), h, "pw"); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if ok, _ := l.Verify(context.Background(), h, "nope"); ok {
		t.Fatal("wrong password accepted")
	}
	l.slots <- struct{}{} // every slot busy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Verify(ctx, h, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with no free slot: %v", err)
	}
	<-l.slots
	if ok, err := l.Verify(context.Background(), h, "pw"); !ok || err != nil {
		t.Fatalf("Verify after the slot freed: %v, %v", ok, err)
	}
}
