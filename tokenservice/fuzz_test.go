package tokenservice

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// FuzzRoutes drives the four Token Service routes with any content type
// and body, with no token, an admin's token or another string: the answer
// is always the JSON envelope with a status below 500, and a 401 is
// challenged.
func FuzzRoutes(f *testing.F) {
	is := issuertest.New(f, issuer.Config{Issuer: "https://gw", Entities: []issuer.Entity{{ID: "aa-1"}}})
	s := &Server{Issuer: is, Log: zap.NewNop(),
		AdminRoles: []string{"admin"}, AdminKinds: []issuer.PrincipalKind{issuer.KindUser}, SecretTTL: 24 * time.Hour, MaxSecretTTL: 48 * time.Hour,
		Tokens: issuertest.Checker(f, is)}
	u, err := is.AuthenticateUser(context.Background(), "alice", issuertest.Password)
	if err != nil {
		f.Fatal(err)
	}
	admin, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.UserPrincipal(u)})
	if err != nil {
		f.Fatal(err)
	}
	routes := s.Routes()
	paths := []string{PathUserToken, PathSecretRead, PathSecretReset, PathEntityToken}
	f.Fuzz(func(t *testing.T, route uint8, ctype, auth string, body []byte) {
		path := paths[int(route)%len(paths)]
		if auth == "admin" {
			auth = "Bearer " + admin.AccessToken
		}
		rec := httptest.NewRecorder()
		routes[path].Handler(rec, issuertest.Request(http.MethodPost, path, ctype, auth, body))
		issuertest.WantClientAnswer(t, rec)
		var env struct {
			Timestamp string `json:"timestamp"`
			ErrorCode string `json:"errorCode"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Timestamp == "" || (rec.Code >= 400) != (env.ErrorCode != "") {
			t.Fatalf("%d: not the envelope: %s", rec.Code, rec.Body)
		}
	})
}
