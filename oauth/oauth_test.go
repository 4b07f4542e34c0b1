package oauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
)

func TestReadClient(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, header string
		body         map[string]string
		id, secret   string
		basicUsed    bool
		present      bool
		code         string // expected error code, "" for none
	}{
		{"none", "", nil, "", "", false, false, ""},
		{"body", "", map[string]string{"client_id": "a", "client_secret": "s"}, "a", "s", false, true, ""},
		{"body id only (public client)", "", map[string]string{"client_id": "a"}, "a", "", false, true, ""},
		{"basic", basic("a:s"), nil, "a", "s", true, true, ""},
		{"basic with matching body id", basic("a:s"), map[string]string{"client_id": "a"}, "a", "s", true, true, ""},
		{"empty basic is no client", basic(":"), nil, "", "", true, false, ""},
		{"basic and body secret", basic("a:s"), map[string]string{"client_secret": "s"}, "", "", false, false, ErrInvalidRequest},
		{"basic and other body id", basic("a:s"), map[string]string{"client_id": "b"}, "", "", false, false, ErrInvalidRequest},
		{"broken basic", "Basic ???", nil, "", "", false, false, ErrInvalidClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/token", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			ca, err := readClient(r, tc.body)
			if tc.code != "" {
				if err == nil || codeOf(err) != tc.code {
					t.Fatalf("err %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || ca.id != tc.id || ca.secret != tc.secret || ca.basic != tc.basicUsed || ca.present != tc.present {
				t.Fatalf("got %+v, %v", ca, err)
			}
		})
	}
}

// codeOf is the error code OAuth answers p with.
func codeOf(p *httpx.Problem) string {
	c, _ := code(p)
	return c
}

func TestWriteErrorStatuses(t *testing.T) {
	for _, tc := range []struct {
		err       *httpx.Problem
		code      string
		status    int
		challenge bool
	}{
		{httpx.New(httpx.KindInvalidGrant, "x"), ErrInvalidGrant, 400, false},
		{httpx.New(httpx.KindInvalidClient, "x"), ErrInvalidClient, 401, true}, // every 401 is challenged, body credentials too
		{httpx.New(httpx.KindInternal, "x"), ErrServerError, 500, false},
		{&httpx.Problem{Kind: httpx.KindInvalidRequest, Description: "big", Status: 413}, ErrInvalidRequest, 413, false},
	} {
		rec := httptest.NewRecorder()
		httpx.WriteProblem(rec, httptest.NewRequest(http.MethodPost, PathToken, nil), dialect{s: &Server{Realm: "api", Log: zap.NewNop()}}, tc.err)
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body["error"] != tc.code || body["error_description"] == "" {
			t.Errorf("%s: %d %s", tc.code, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("WWW-Authenticate"); (got == `Basic realm="api", charset="UTF-8"`) != tc.challenge || (got != "") != tc.challenge {
			t.Errorf("%s: challenge %v, want %v", tc.code, got, tc.challenge)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: not no-store", tc.code)
		}
	}
}
