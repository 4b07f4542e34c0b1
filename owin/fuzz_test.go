package owin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// FuzzServeHTTP drives /Token with any method, content type, Authorization
// and body: the answer is JSON with a status below 500, a 401 is
// challenged, and a success is for a configured user.
func FuzzServeHTTP(f *testing.F) {
	is := issuertest.New(f, issuer.Config{Issuer: "https://gw",
		Clients: []issuer.Client{{ID: "svc", SecretHash: issuertest.Hash(f, "s3cret"), Grants: []string{"client_credentials"}}}})
	s := &Server{Issuer: is, Log: zap.NewNop()}
	f.Fuzz(func(t *testing.T, post bool, ctype, auth string, body []byte) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, issuertest.Request(method, DefaultPath, ctype, auth, body))
		issuertest.WantClientAnswer(t, rec)
		if rec.Code == http.StatusOK && auth != "" && !isNoClient(auth) {
			t.Fatalf("a client limited to client_credentials got a password token: %s", rec.Body)
		}
	})
}

// isNoClient reports an Authorization value that names no client: only
// Basic credentials do, and only the one client exists.
func isNoClient(auth string) bool {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", auth)
	_, _, ok := r.BasicAuth()
	return !ok
}
