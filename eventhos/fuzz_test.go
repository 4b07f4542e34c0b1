package eventhos

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// FuzzServeHTTP drives the route with any content type and body: the answer
// is Eventhos's envelope with a status below 500.
func FuzzServeHTTP(f *testing.F) {
	is := issuertest.New(f, issuer.Config{Issuer: "https://gw",
		Clients:  []issuer.Client{{ID: "svc", SecretHash: issuertest.Hash(f, "s3cret")}},
		Entities: []issuer.Entity{{ID: "aa-1"}}})
	s := &Server{Issuer: is, Log: zap.NewNop()}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, issuertest.Request(http.MethodPost, DefaultPath, ctype, "", body))
		issuertest.WantClientAnswer(t, rec)
		if rec.Code != http.StatusCreated && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
