package oauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// FuzzTokenRoutes drives /token, /token/revoke and /token/introspect with
// any content type, Authorization and body: the answer is always a JSON
// 2xx or 4xx, never a 5xx, and every 401 is challenged.
func FuzzTokenRoutes(f *testing.F) {
	is := issuertest.New(f, issuer.Config{Issuer: "https://gw",
		Clients: []issuer.Client{{ID: "svc", SecretHash: issuertest.Hash(f, "s3cret"), Scopes: []string{"read"}}}})
	s := &Server{Issuer: is, Log: zap.NewNop()}
	routes := s.Routes()
	paths := []string{PathToken, PathRevoke, PathIntrospect}
	f.Fuzz(func(t *testing.T, route uint8, ctype, auth string, body []byte) {
		path := paths[int(route)%len(paths)]
		rec := httptest.NewRecorder()
		routes[path].Handler(rec, issuertest.Request(http.MethodPost, path, ctype, auth, body))
		issuertest.WantClientAnswer(t, rec)
	})
}
