package httpx

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		name, ctype, body string
		want              map[string]string
		status            int
	}{
		{"form", "application/x-www-form-urlencoded; charset=utf-8", "a=1&b=x+y", map[string]string{"a": "1", "b": "x y"}, 0},
		{"json", "application/json", `{"a":"1","n":42}`, map[string]string{"a": "1", "n": "42"}, 0},
		{"empty, no type", "", "", map[string]string{}, 0},
		{"repeated form", "application/x-www-form-urlencoded", "a=1&a=2", nil, 400},
		{"repeated json", "application/json", `{"a":"1","a":"2"}`, nil, 400},
		{"json bool", "application/json", `{"a":true}`, nil, 400},
		{"json null", "application/json", `{"a":null}`, nil, 400},
		{"json not object", "application/json", `"a"`, nil, 400},
		{"json trailing", "application/json", `{} x`, nil, 400},
		{"bad utf8", "application/x-www-form-urlencoded", "a=\xff", nil, 400},
		{"escaped bad utf8", "application/x-www-form-urlencoded", "a=%ff", nil, 400},
		{"text", "text/plain", "a=1", nil, 400},
		{"too large", "application/x-www-form-urlencoded", "a=" + strings.Repeat("x", MaxBody), nil, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			got, err := Params(httptest.NewRecorder(), r)
			if tc.status != 0 {
				if err == nil || Status(err) != tc.status {
					t.Fatalf("got %v (status %d), want status %d", err, Status(err), tc.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestBasicAuthAndBearer(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, header, id, secret string
		err                      error // ErrNoCredentials, or nil
		status                   int   // for other errors
	}{
		{"none", "", "", "", ErrNoCredentials, 0},
		{"bearer is not basic", "Bearer x", "", "", ErrNoCredentials, 0},
		{"plain", "Basic " + b64("id:se:cret"), "id", "se:cret", nil, 0},
		{"form-encoded", "basic " + b64("a%20b:c%2Bd"), "a b", "c+d", nil, 0},
		{"not base64", "Basic !!", "", "", nil, 401},
		{"no colon", "Basic " + b64("id"), "", "", nil, 401},
		{"bad escape", "Basic " + b64("%zz:x"), "", "", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			id, secret, err := BasicAuth(r)
			switch {
			case tc.status != 0:
				if err == nil || Status(err) != tc.status {
					t.Fatalf("err %v, want status %d", err, tc.status)
				}
			case !errors.Is(err, tc.err):
				t.Fatalf("err %v, want %v", err, tc.err)
			case id != tc.id || secret != tc.secret:
				t.Fatalf("got %q %q", id, secret)
			}
		})
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Authorization", "Bearer a")
	r.Header.Add("Authorization", "Bearer b")
	if _, err := BearerToken(r); err == nil || Status(err) != 400 {
		t.Fatalf("two Authorization headers: %v", err)
	}
	r.Header.Set("Authorization", "bearer  tok ")
	if tok, err := BearerToken(r); err != nil || tok != "tok" {
		t.Fatalf("BearerToken = %q, %v", tok, err)
	}
}
