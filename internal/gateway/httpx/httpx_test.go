package httpx

import (
	"encoding/base64"
	"encoding/json"
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

// TestParseJSON pins the one JSON strictness every dialect shares (see
// ParseJSON's godoc), through each way a route reads JSON.
func TestParseJSON(t *testing.T) {
	type target struct {
		A string `json:"a"`
		N struct {
			B []int `json:"b"`
		} `json:"n"`
	}
	deep := strings.Repeat(`[`, MaxJSONDepth) + strings.Repeat(`]`, MaxJSONDepth)
	for _, tc := range []struct {
		name, body string
		ok         bool // ParseJSON into target
		params     bool // JSONParams (flat scalars) accepts it too
	}{
		{"object", `{"a":"x","n":{"b":[1,2]}}`, true, false},
		{"flat", `{"a":"x","z":"1"}`, true, true},
		{"unknown fields allowed", `{"a":"x","extra":"y"}`, true, true},
		{"whitespace around", " \n{\"a\":\"x\"}\n ", true, true},
		{"empty object", `{}`, true, true},
		{"duplicate key", `{"a":"x","a":"y"}`, false, false},
		{"duplicate key differing in case", `{"a":"x","A":"y"}`, false, false},
		{"duplicate key by long s folding", "{\"s\":\"x\",\"\u017f\":\"y\"}", false, false},
		{"duplicate key by Kelvin sign folding", "{\"\u212a\":\"x\",\"k\":\"y\"}", false, false},
		{"duplicate key nested", `{"n":{"b":[1],"b":[2]}}`, false, false},
		{"duplicate key inside an array", `{"z":[{"k":1,"k":2}]}`, false, false},
		{"same key in sibling objects", `{"z":[{"k":1},{"k":2}]}`, true, false},
		{"trailing data", `{"a":"x"} {}`, false, false},
		{"trailing garbage", `{"a":"x"}x`, false, false},
		{"array", `["a"]`, false, false},
		{"null", `null`, false, false},
		{"string", `"a"`, false, false},
		{"empty", ``, false, false},
		{"truncated", `{"a":"x"`, false, false},
		{"wrong type", `{"a":1}`, false, true},
		{"huge number", `{"z":1e999}`, true, true},
		{"nesting at the limit", `{"z":` + strings.Repeat(`[`, MaxJSONDepth-1) + strings.Repeat(`]`, MaxJSONDepth-1) + `}`, true, false},
		{"nesting over the limit", `{"z":` + deep + `}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v target
			err := ParseJSON([]byte(tc.body), &v)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseJSON(%s) = %v, want ok=%v", tc.body, err, tc.ok)
			}
			if err != nil && Status(err) != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", Status(err))
			}
			if _, err := JSONParams([]byte(tc.body)); (err == nil) != tc.params {
				t.Fatalf("JSONParams(%s) = %v, want ok=%v", tc.body, err, tc.params)
			}
			// The request readers apply the same rules.
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if err := DecodeJSON(httptest.NewRecorder(), req, &target{}); (err == nil) != tc.ok {
				t.Fatalf("DecodeJSON(%s) = %v, want ok=%v", tc.body, err, tc.ok)
			}
		})
	}
	t.Run("size limit", func(t *testing.T) {
		body := `{"a":"` + strings.Repeat("x", MaxBody) + `"}`
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if err := DecodeJSON(httptest.NewRecorder(), req, &target{}); Status(err) != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized body: %v", err)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "text/plain")
		if err := DecodeJSON(httptest.NewRecorder(), req, &target{}); Status(err) != http.StatusBadRequest {
			t.Fatalf("text/plain: %v", err)
		}
	})
}

// FuzzParseJSON: the reader never panics, accepts only valid JSON objects,
// and whatever JSONParams accepts, ParseJSON accepts too.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":"x"}`, `{"a":"x","A":"y"}`, `{"n":{"b":[1,{"k":2,"k":3}]}}`, `[]`, `{"a":1e999} x`, strings.Repeat("[", 40)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v map[string]any
		err := ParseJSON(body, &v)
		if err == nil && (!json.Valid(body) || v == nil) {
			t.Fatalf("accepted %q", body)
		}
		if err != nil {
			wantRequestError(t, err)
		}
		if _, perr := JSONParams(body); perr == nil && err != nil {
			t.Fatalf("JSONParams accepted %q, ParseJSON refused: %v", body, err)
		}
	})
}
