package tokengate

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestGuardAllocations: a request with a cached token costs the guard at
// most three allocations (the identity provider, the Replacer growing its
// provider list, the forwarded header's value), measured against the same
// request handled without the guard.
func TestGuardAllocations(t *testing.T) {
	h, secret := provisioned(t)
	tok := issueToken(t, h, secret)
	req := withReplacer(httptest.NewRequest(http.MethodGet, "https://api.example/admin/x", nil))
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	run := func(guard bool) float64 {
		return testing.AllocsPerRun(200, func() {
			r := withReplacer(req) // a fresh Replacer, as Caddy makes per request
			r.Header = req.Header.Clone()
			if guard {
				_ = h.ServeHTTP(rec, r, okNext)
			} else {
				_ = okNext.ServeHTTP(rec, r)
			}
		})
	}
	_ = h.ServeHTTP(rec, withReplacer(req), okNext) // warm the verified cache
	if rec.Code != http.StatusNoContent {
		t.Fatalf("guard: %d %s", rec.Code, rec.Body)
	}
	if extra := run(true) - run(false); extra > 3 {
		t.Fatalf("the guard allocates %.0f times per request", extra)
	}
}
