package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/oauth"
)

const gw = "https://gw.test"

type reply struct {
	status int
	header http.Header
	json   map[string]any
}

// server is an oauth.Server on a real issuer, called without Caddy.
type server struct {
	t      *testing.T
	routes map[string]func(http.ResponseWriter, *http.Request)
}

func newServer(t *testing.T) *server {
	is := issuertest.New(t, issuer.Config{Issuer: gw, Clients: []issuer.Client{
		{ID: "svc", SecretHash: issuertest.Hash(t, "svc-secret"), Roles: []string{"reader"}, Scopes: []string{"read", "write"}},
		{ID: "narrow", SecretHash: issuertest.Hash(t, "narrow-secret"), Grants: []string{"password", "refresh_token"}},
	}})
	s := &oauth.Server{Issuer: is, Log: zap.NewNop()}
	routes := map[string]func(http.ResponseWriter, *http.Request){}
	for path, rt := range s.Routes() {
		routes[path] = rt.Handler
	}
	return &server{t: t, routes: routes}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func (s *server) call(method, path, contentType, body string, headers ...string) reply {
	s.t.Helper()
	r := httptest.NewRequest(method, gw+path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	s.routes[path](w, r)
	out := reply{status: w.Code, header: w.Header()}
	_ = json.Unmarshal(w.Body.Bytes(), &out.json)
	return out
}

func (s *server) form(path string, v url.Values, headers ...string) reply {
	return s.call(http.MethodPost, path, "application/x-www-form-urlencoded", v.Encode(), headers...)
}

func TestTokenEndpoint(t *testing.T) {
	s := newServer(t)
	svc := []string{"Authorization", basic("svc", "svc-secret")}
	for _, tc := range []struct {
		name    string
		v       url.Values
		headers []string
		status  int
		code    string // error code, "" for success
	}{
		{"password", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {issuertest.Password}}, nil, 200, ""},
		{"password with scope", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {issuertest.Password}, "scope": {"read"}}, nil, 200, ""},
		{"password scope not granted", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {issuertest.Password}, "scope": {"admin"}}, nil, 400, oauth.ErrInvalidScope},
		{"wrong password", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"nope"}}, nil, 400, oauth.ErrInvalidGrant},
		{"unknown user", url.Values{"grant_type": {"password"}, "username": {"zed"}, "password": {"nope"}}, nil, 400, oauth.ErrInvalidGrant},
		{"password without username", url.Values{"grant_type": {"password"}, "password": {"x"}}, nil, 400, oauth.ErrInvalidRequest},
		{"password by a client", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {issuertest.Password}}, []string{"Authorization", basic("narrow", "narrow-secret")}, 200, ""},
		{"password by a client with a wrong secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {issuertest.Password}}, []string{"Authorization", basic("narrow", "bad")}, 401, oauth.ErrInvalidClient},
		{"client_credentials", url.Values{"grant_type": {"client_credentials"}}, svc, 200, ""},
		{"client_credentials in the body", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"svc-secret"}}, nil, 200, ""},
		{"client_credentials narrowed", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, svc, 200, ""},
		{"client_credentials widened", url.Values{"grant_type": {"client_credentials"}, "scope": {"root"}}, svc, 400, oauth.ErrInvalidScope},
		{"client_credentials wrong secret", url.Values{"grant_type": {"client_credentials"}}, []string{"Authorization", basic("svc", "bad")}, 401, oauth.ErrInvalidClient},
		{"client_credentials without a client", url.Values{"grant_type": {"client_credentials"}}, nil, 401, oauth.ErrInvalidClient},
		{"grant the client may not use", url.Values{"grant_type": {"client_credentials"}}, []string{"Authorization", basic("narrow", "narrow-secret")}, 400, oauth.ErrUnauthorizedClient},
		{"no grant_type", url.Values{}, nil, 400, oauth.ErrInvalidRequest},
		{"unknown grant_type", url.Values{"grant_type": {"implicit"}}, nil, 400, oauth.ErrUnsupportedGrantType},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tgr_nope"}}, nil, 400, oauth.ErrInvalidGrant},
		{"refresh without a token", url.Values{"grant_type": {"refresh_token"}}, nil, 400, oauth.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.form(oauth.PathToken, tc.v, tc.headers...)
			if r.status != tc.status || (tc.code == "" && r.json["access_token"] == nil) || (tc.code != "" && r.json["error"] != tc.code) {
				t.Fatalf("%d %v; want %d %q", r.status, r.json, tc.status, tc.code)
			}
			if tc.code == "" && (r.json["token_type"] != "Bearer" || r.header.Get("Cache-Control") != "no-store") {
				t.Fatalf("success response %v %v", r.json, r.header)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" && len(tc.headers) > 0 {
				t.Fatalf("401 without a challenge: %v", r.header)
			}
		})
	}
	// A JSON body is read the same way.
	r := s.call(http.MethodPost, oauth.PathToken, "application/json", `{"grant_type":"client_credentials","client_id":"svc","client_secret":"svc-secret"}`)
	if r.status != 200 {
		t.Fatalf("JSON body: %d %v", r.status, r.json)
	}
	if r := s.call(http.MethodPost, oauth.PathToken, "text/plain", "grant_type=password"); r.status < 400 || r.status >= 500 {
		t.Fatalf("unknown content type: %d", r.status)
	}
}

func TestRefreshRevokeIntrospect(t *testing.T) {
	s := newServer(t)
	svc := []string{"Authorization", basic("svc", "svc-secret")}
	first := s.form(oauth.PathToken, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {issuertest.Password}})
	rt, _ := first.json["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("no refresh token: %v", first.json)
	}
	second := s.form(oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if second.status != 200 || second.json["refresh_token"] == rt {
		t.Fatalf("refresh: %d %v", second.status, second.json)
	}
	// The used token again within refresh_grace is a retry (a client that
	// lost the answer): a new pair, which supersedes the second.
	retry := s.form(oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if retry.status != 200 || retry.json["refresh_token"] == second.json["refresh_token"] {
		t.Fatalf("retry within the grace: %d %v", retry.status, retry.json)
	}
	// The superseded token surfacing means two holders: reuse, which
	// revokes the family, so every token of it is dead.
	for _, tok := range []any{second.json["refresh_token"], retry.json["refresh_token"], rt} {
		if r := s.form(oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.(string)}}); r.status != 400 || r.json["error"] != oauth.ErrInvalidGrant {
			t.Fatalf("refresh after reuse: %d %v", r.status, r.json)
		}
	}

	at := s.form(oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, svc...).json["access_token"].(string)
	if r := s.form(oauth.PathIntrospect, url.Values{"token": {at}}, svc...); r.status != 200 || r.json["active"] != true || r.json["client_id"] != "svc" {
		t.Fatalf("introspect: %d %v", r.status, r.json)
	}
	if r := s.form(oauth.PathIntrospect, url.Values{"token": {at}}); r.status != 401 || r.json["error"] != oauth.ErrInvalidClient {
		t.Fatalf("introspect without a client: %d %v", r.status, r.json)
	}
	if r := s.form(oauth.PathIntrospect, url.Values{}, svc...); r.status != 400 {
		t.Fatalf("introspect without a token: %d %v", r.status, r.json)
	}
	if r := s.form(oauth.PathIntrospect, url.Values{"token": {"garbage"}}, svc...); r.status != 200 || r.json["active"] != false {
		t.Fatalf("introspect garbage: %d %v", r.status, r.json)
	}
	live := s.form(oauth.PathToken, url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {issuertest.Password}})
	if r := s.form(oauth.PathIntrospect, url.Values{"token": {live.json["refresh_token"].(string)}}, svc...); r.json["active"] != true {
		t.Fatalf("introspect a refresh token: %v", r.json)
	}
	if r := s.form(oauth.PathRevoke, url.Values{"token": {live.json["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
		t.Fatalf("revoke refresh: %d", r.status)
	}
	if r := s.form(oauth.PathRevoke, url.Values{"token": {at}}, svc...); r.status != 200 {
		t.Fatalf("revoke access: %d", r.status)
	}
	if r := s.form(oauth.PathIntrospect, url.Values{"token": {at}}, svc...); r.json["active"] != false {
		t.Fatalf("introspect revoked: %v", r.json)
	}
	if r := s.form(oauth.PathRevoke, url.Values{}); r.status != 400 || r.json["error"] != oauth.ErrInvalidRequest {
		t.Fatalf("revoke without a token: %d %v", r.status, r.json)
	}
	if r := s.form(oauth.PathRevoke, url.Values{"token": {"x"}}, "Authorization", basic("svc", "bad")); r.status != 401 {
		t.Fatalf("revoke with a bad client: %d %v", r.status, r.json)
	}
}

func TestDiscovery(t *testing.T) {
	s := newServer(t)
	r := s.call(http.MethodGet, oauth.PathJWKS, "", "")
	keys, _ := r.json["keys"].([]any)
	if r.status != 200 || len(keys) != 1 || keys[0].(map[string]any)["kty"] != "OKP" {
		t.Fatalf("jwks: %d %v", r.status, r.json)
	}
	r = s.call(http.MethodGet, oauth.PathMetadata, "", "")
	if r.status != 200 || r.json["issuer"] != gw || r.json["token_endpoint"] != gw+oauth.PathToken ||
		r.json["jwks_uri"] != gw+oauth.PathJWKS || r.json["revocation_endpoint"] != gw+oauth.PathRevoke {
		t.Fatalf("metadata: %d %v", r.status, r.json)
	}
}
