package oauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
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
				if err == nil || err.Code != tc.code {
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

func TestWriteErrorStatuses(t *testing.T) {
	for _, tc := range []struct {
		err       *Error
		status    int
		challenge bool
	}{
		{oauthErr(ErrInvalidGrant, "x"), 400, false},
		{oauthErr(ErrInvalidClient, "x"), 401, true}, // every 401 is challenged, body credentials too
		{oauthErr(ErrServerError, "x"), 500, false},
		{&Error{Code: ErrInvalidRequest, Description: "big", status: 413}, 413, false},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, "api", tc.err)
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body["error"] != tc.err.Code || body["error_description"] == "" {
			t.Errorf("%s: %d %s", tc.err.Code, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("WWW-Authenticate"); (got == `Basic realm="api", charset="UTF-8"`) != tc.challenge || (got != "") != tc.challenge {
			t.Errorf("%s: challenge %v, want %v", tc.err.Code, got, tc.challenge)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: not no-store", tc.err.Code)
		}
	}
}
