package issuer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

func TestSealedState(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, path := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{})
	sealed, err := is.SealState("authorize", []byte("pending"), time.Minute)
	must(t, err)
	// Another instance on the same store opens it.
	other := newIssuer(t, openCoreAt(t, path, clk, nil), issuer.Config{})
	if got, err := other.OpenState("authorize", sealed); err != nil || string(got) != "pending" {
		t.Fatalf("OpenState on another instance = %q, %v", got, err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)/2] ^= 1
	for name, tc := range map[string]struct{ purpose, sealed string }{
		"another purpose": {"consent", sealed},
		"tampered":        {"authorize", string(tampered)},
		"garbage":         {"authorize", "%%%"},
		"empty":           {"authorize", ""},
	} {
		if _, err := is.OpenState(tc.purpose, tc.sealed); !errors.Is(err, issuer.ErrStateInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	clk.Add(time.Minute)
	if _, err := is.OpenState("authorize", sealed); !errors.Is(err, issuer.ErrStateInvalid) {
		t.Fatalf("expired state: %v", err)
	}
	// A store of its own has another key.
	stranger := newIssuer(t, func() *issuer.Core { c, _ := newCore(t, clk, nil); return c }(), issuer.Config{})
	if stranger.StateMAC("csrf", "a", "b") == is.StateMAC("csrf", "a", "b") || is.StateMAC("csrf", "a", "b") != other.StateMAC("csrf", "a", "b") ||
		is.StateMAC("csrf", "ab", "") == is.StateMAC("csrf", "a", "b") {
		t.Fatal("StateMAC does not depend on exactly the store's key and the parts")
	}
}
