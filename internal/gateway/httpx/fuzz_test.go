package httpx

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// wantRequestError fails unless err is a request problem with a 4xx status.
func wantRequestError(t *testing.T, err error) {
	t.Helper()
	var e *Problem
	if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Description == "" {
		t.Fatalf("error %v (%T) is not a 4xx request error", err, err)
	}
}

// FuzzBearerToken: any Authorization value gives no credentials, a 4xx
// error, or a trimmed non-empty token that reads back the same from a
// canonical header.
func FuzzBearerToken(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{value}
		tok, err := BearerToken(r)
		scheme, _, _ := strings.Cut(value, " ")
		switch {
		case errors.Is(err, ErrNoCredentials):
			if value != "" && strings.EqualFold(scheme, "Bearer") {
				t.Fatalf("%q: a Bearer header read as no credentials", value)
			}
		case err != nil:
			wantRequestError(t, err)
		default:
			if tok == "" || tok != strings.TrimSpace(tok) || !strings.EqualFold(scheme, "Bearer") {
				t.Fatalf("%q: token %q", value, tok)
			}
			r.Header["Authorization"] = []string{"Bearer " + tok}
			if again, err := BearerToken(r); err != nil || again != tok {
				t.Fatalf("%q: re-read %q, %v", tok, again, err)
			}
		}
	})
}

// FuzzBasicAuth: Basic credentials that parse encode back to themselves.
func FuzzBasicAuth(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{value}
		id, secret, err := BasicAuth(r)
		switch {
		case errors.Is(err, ErrNoCredentials):
		case err != nil:
			wantRequestError(t, err)
		default:
			raw := url.QueryEscape(id) + ":" + url.QueryEscape(secret)
			r.Header["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(raw))}
			if id2, secret2, err := BasicAuth(r); err != nil || id2 != id || secret2 != secret {
				t.Fatalf("re-encoded %q:%q read as %q:%q, %v", id, secret, id2, secret2, err)
			}
		}
	})
}

// FuzzParams: a body of any type and content gives a 4xx error or
// single-valued parameters that survive re-encoding as a form and as JSON.
func FuzzParams(f *testing.F) {
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		if ctype != "" {
			r.Header["Content-Type"] = []string{ctype}
		}
		p, err := Params(httptest.NewRecorder(), r)
		if err != nil {
			wantRequestError(t, err)
			return
		}
		form := url.Values{}
		for k, v := range p {
			form.Set(k, v)
		}
		if back, err := FormParams([]byte(form.Encode())); err != nil || !maps.Equal(back, p) {
			t.Fatalf("form round trip: %v -> %v, %v", p, back, err)
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := JSONParams(js)
		if foldedTwice(p) {
			// Form names are case-sensitive; JSON keys equal under case
			// folding are one repeated key to ParseJSON.
			if err == nil {
				t.Fatalf("JSON %s with keys equal under case folding accepted", js)
			}
			return
		}
		if err != nil || !maps.Equal(back, p) {
			t.Fatalf("JSON round trip: %v -> %v, %v", p, back, err)
		}
	})
}

// foldedTwice says whether two of p's names are equal under case folding.
func foldedTwice(p map[string]string) bool {
	seen := map[string]bool{}
	for k := range p {
		if seen[FoldKey(k)] {
			return true
		}
		seen[FoldKey(k)] = true
	}
	return false
}

// FuzzDecodeJSON: a JSON body decodes into a struct or gives a 4xx error
// (the route entry point: content type and body limits, then ParseJSON;
// FuzzParseJSON checks the reader's own rules).
func FuzzDecodeJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		r.Header["Content-Type"] = []string{ctype}
		var v struct {
			A string           `json:"a"`
			B *struct{ C int } `json:"b"`
		}
		if err := DecodeJSON(httptest.NewRecorder(), r, &v); err != nil {
			wantRequestError(t, err)
		}
	})
}
