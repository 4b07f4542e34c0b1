package issuer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var keyDigits = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestRefreshTokenFormat(t *testing.T) {
	if got := len(refreshPrefix) + base64.RawURLEncoding.EncodedLen(refreshStampLen+32); got != refreshTokenLen {
		t.Fatalf("refreshTokenLen = %d, tokens are %d long", refreshTokenLen, got)
	}
	if base64.RawURLEncoding.EncodedLen(refreshStampLen) != refreshStampB64 || refreshStampLen%3 != 0 {
		t.Fatalf("the stamp's %d digits must hold its %d bytes exactly", refreshStampB64, refreshStampLen)
	}
	base := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var keys, want []string
	for i, d := range []time.Duration{0, time.Millisecond, 2 * time.Second, time.Hour, 30 * 24 * time.Hour, 10 * 365 * 24 * time.Hour} {
		issued := base.Add(d)
		tok, err := NewRefreshToken(issued)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != refreshTokenLen || !strings.HasPrefix(tok, refreshPrefix) {
			t.Fatalf("token %q", tok)
		}
		key := RefreshKey(tok)
		sum := sha256.Sum256([]byte(tok))
		if !keyDigits.MatchString(key) || key != fmt.Sprintf("%012x", issued.UnixMilli())+hex.EncodeToString(sum[:])[:refreshKeyHashHx] {
			t.Fatalf("token %d issued %v: key %q", i, issued, key)
		}
		keys = append(keys, key)
		want = append(want, key)
	}
	// Keys sort in issue order, so new tokens land at an index's end.
	sort.Strings(keys)
	for i := range keys {
		if keys[i] != want[i] {
			t.Fatalf("keys do not sort in issue order: %q", keys)
		}
	}
}

func TestRefreshKeyOfOtherStrings(t *testing.T) {
	legacy, err := NewSecret(refreshPrefix) // tokens issued before the time-first format
	if err != nil {
		t.Fatal(err)
	}
	made, err := NewRefreshToken(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	badStamp := made[:len(refreshPrefix)] + "!!!!!!!!" + made[len(refreshPrefix)+refreshStampB64:]
	otherPrefix := "tgx_" + made[len(refreshPrefix):]
	newline := made[:len(refreshPrefix)+2] + "\n" + made[len(refreshPrefix)+3:]
	for _, s := range []string{legacy, badStamp, otherPrefix, newline, "", "tgr_", "tgr_nope", made + "x", made[:len(made)-1]} {
		sum := sha256.Sum256([]byte(s))
		if got := RefreshKey(s); got != hex.EncodeToString(sum[:]) {
			t.Errorf("RefreshKey(%q) = %q, want the SHA-256 of the whole string", s, got)
		}
	}
}

func TestFamilyIDsSortByTime(t *testing.T) {
	base := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	prev := ""
	for _, d := range []time.Duration{0, time.Millisecond, time.Second, 400 * 24 * time.Hour} {
		id, err := newFamilyID(base.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 28 || id <= prev {
			t.Fatalf("family id %q after %q", id, prev)
		}
		prev = id
	}
	a, _ := newFamilyID(base)
	b, _ := newFamilyID(base)
	if a == b {
		t.Fatal("two families begun in one millisecond share an id")
	}
}

// FuzzRefreshKey: every string gets a 64-hex-digit key, and two different
// strings never share one (the key covers the whole token, stamp included).
func FuzzRefreshKey(f *testing.F) {
	made, err := NewRefreshToken(time.Unix(1_700_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	legacy, _ := NewSecret(refreshPrefix)
	f.Add(made, made[:len(made)-1]+"A")
	f.Add(made, "tgr_AAAAAAAA"+made[len(refreshPrefix)+refreshStampB64:])
	f.Add(legacy, "tgr_nope")
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := RefreshKey(a), RefreshKey(b)
		if !keyDigits.MatchString(ka) || !keyDigits.MatchString(kb) {
			t.Fatalf("keys %q, %q", ka, kb)
		}
		if a != b && ka == kb {
			t.Fatalf("%q and %q share the key %q", a, b, ka)
		}
	})
}
