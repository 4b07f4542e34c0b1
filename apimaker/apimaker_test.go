package apimaker

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

func TestEnvelope(t *testing.T) {
	s := &Server{Issuer: issuertest.New(t, issuer.Config{}), Log: zap.NewNop()}
	s.Tokens = issuertest.Checker(t, s.Issuer)
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"AM", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"` + issuertest.Password + `"}}`, 200},
		{"AM wrong password", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"x"}}`, 401},
		{"AM_DB with no tables configured", `{"authTokenType":"AM_DB","authTokenAMDB":{"instance":"a","database":"b","collection":"c","usernameColumn":"d","passwordColumn":"e","u":"f","p":"g"}}`, 400},
		{"trailing data", `{"authTokenType":"AM"} x`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, DefaultPath, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			var body response
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.status || body.StatusCode != tc.status || body.Success != (tc.status == 200) {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tc.status == 200 && (body.Data == nil || body.Data.Token == "" || body.Data.RefreshToken == "" || body.Data.ExpiresIn != 900) {
				t.Fatalf("data %+v", body.Data)
			}
		})
	}
}
