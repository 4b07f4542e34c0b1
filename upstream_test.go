package tokengate_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestIdentityHeadersReachingARealUpstream proxies to a real HTTP server and
// checks what it receives: the gateway's identity headers, never a copy the
// caller sent, in any spelling an upstream might read as the same header.
func TestIdentityHeadersReachingARealUpstream(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		fmt.Fprint(w, "upstream")
	}))
	defer upstream.Close()
	userHash, _ := hashes()
	g := &gateway{t: t, tc: newTester(t)}
	g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
	servers {
		# Caddy drops underscore headers by default; a site that lets them
		# through must still never pass a caller's identity upstream.
		expected_underscore_headers X_User_Id
	}
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		user alice %s roles admin
		allow /public/*
		forward_header X-User-Id sub
	}
	reverse_proxy %s
}`, filepath.Join(t.TempDir(), "tg.db"), userHash, strings.TrimPrefix(upstream.URL, "http://")), "caddyfile")
	tok := g.passwordToken("alice")["access_token"].(string)
	spoof := []string{"X-User-Id", "root", "X_User_Id", "root"}
	for _, path := range []string{"/api", "/public/x"} {
		token := tok
		if strings.HasPrefix(path, "/public") {
			token = ""
		}
		if r := g.get(path, token, spoof...); r.status != 200 || r.body != "upstream" {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		mu.Lock()
		for k, v := range got {
			norm := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
			if norm == "X-User-Id" && (len(v) != 1 || v[0] != "alice" || k != "X-User-Id") {
				t.Errorf("%s: upstream received %s: %v", path, k, v)
			}
		}
		if want := map[string]string{"/api": "alice", "/public/x": ""}[path]; got.Get("X-User-Id") != want {
			t.Errorf("%s: upstream X-User-Id %q, want %q", path, got.Get("X-User-Id"), want)
		}
		mu.Unlock()
	}
}
