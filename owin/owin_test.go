package owin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

func TestBodyDecidesTheFormat(t *testing.T) {
	s := &Server{Issuer: issuertest.New(t, issuer.Config{}), Log: zap.NewNop()}
	for _, tc := range []struct {
		name, ctype, body string
		status            int
	}{
		{"form labelled JSON, as the seed sends it", "application/json", "grant_type=password&username=alice&password=" + issuertest.Password, 200},
		{"JSON object", "application/json", `{"grant_type":"password","username":"alice","password":"` + issuertest.Password + `"}`, 200},
		{"form", "application/x-www-form-urlencoded", "grant_type=password&username=alice&password=" + issuertest.Password, 200},
		{"broken JSON", "application/json", `{"grant_type":`, 400},
		{"no body", "", "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/Token", strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if tc.status == 200 && (body["userName"] != "alice" || body["role"] != "admin" || body["token_type"] != "bearer") {
				t.Fatalf("body %v", body)
			}
			if tc.status != 200 && body["error"] == nil {
				t.Fatalf("error body %v", body)
			}
		})
	}
}
