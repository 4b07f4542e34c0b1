package eventhos

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestEntitiesAndCodes: an entity gets a client token with its secret, and
// each failure carries its Eventhos code.
func TestEntitiesAndCodes(t *testing.T) {
	is := issuertest.New(t, issuer.Config{
		Clients:  []issuer.Client{{ID: "svc", SecretHash: issuertest.Hash(t, "s3cret"), Roles: []string{"r"}}},
		Entities: []issuer.Entity{{ID: "aa-1", Roles: []string{"member"}}},
	})
	s := &Server{Issuer: is, Log: zap.NewNop(), AccessTTL: time.Hour}
	for _, tc := range []struct {
		name, body string
		status     int
		code       float64
	}{
		{"client", "grant_type=client_credentials&client_id=svc&client_secret=s3cret", 201, CodeOK},
		{"user", "grant_type=password&username=bob&password=" + issuertest.Password, 201, CodeOK},
		{"wrong secret", "grant_type=client_credentials&client_id=svc&client_secret=x", 400, CodeWrongSecret},
		{"entity without a secret yet", "grant_type=client_credentials&client_id=aa-1&client_secret=x", 400, CodeWrongSecret},
		{"unknown", "grant_type=client_credentials&client_id=zz&client_secret=x", 400, CodeNotFound},
		{"bad grant", "grant_type=x", 400, CodeUncategorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			var body struct {
				Code    float64
				Content map[string]any
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tc.status || body.Code != tc.code {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tc.status == 201 {
				if tok, _ := body.Content["jwt_token"].(string); tok == "" {
					t.Fatalf("no jwt_token: %s", rec.Body)
				}
				claims, err := is.Verify(body.Content["jwt_token"].(string))
				if err != nil || time.Until(claims.ExpiresAt.Time) < 59*time.Minute {
					t.Fatalf("token: %v %v (want the route's 1h lifetime)", claims, err)
				}
			}
		})
	}
}
