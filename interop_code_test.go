package tokengate_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestInteropGoOAuth2AuthorizationCode: golang.org/x/oauth2 builds the
// authorization request from the site's metadata with a PKCE S256
// challenge of its own verifier (GenerateVerifier, S256ChallengeOption),
// the test's browser signs in on the login page, and the library
// exchanges the code with that verifier; the token passes the guard. A wrong verifier
// and a replayed code are invalid_grant, as the library reports them.
func TestInteropGoOAuth2AuthorizationCode(t *testing.T) {
	const callback = "http://127.0.0.1/callback"
	g := startGateway(t, "login\n\t\tclient spa public redirect_uri "+callback+" scopes orders:read")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, g.tc.Client)

	meta := g.get("/.well-known/oauth-authorization-server", "")
	grants, _ := meta.json["grant_types_supported"].([]any)
	if meta.status != 200 || meta.json["authorization_endpoint"] != base+"/authorize" || !slices.Contains(grants, any("authorization_code")) {
		t.Fatalf("metadata with a login block: %d %s", meta.status, meta.body)
	}
	conf := oauth2.Config{ClientID: "spa", RedirectURL: callback, Scopes: []string{"orders:read"},
		Endpoint: oauth2.Endpoint{AuthURL: meta.json["authorization_endpoint"].(string), TokenURL: meta.json["token_endpoint"].(string),
			AuthStyle: oauth2.AuthStyleInParams}}

	// A person's part, the login form, is posted by the test's browser.
	b := newBrowser(t, g)
	signedIn := false
	authorize := func(verifier string) string {
		t.Helper()
		u, err := url.Parse(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Get("response_type") != "code" || q.Get("client_id") != "spa" || q.Get("redirect_uri") != callback ||
			q.Get("code_challenge_method") != "S256" || q.Get("state") != "st" {
			t.Fatalf("authorization URL %s", u)
		}
		r := b.do(http.MethodGet, strings.TrimPrefix(u.String(), base), nil)
		if !signedIn {
			r = b.submit(r, "/login", "username", "alice", "password", userPassword)
			signedIn = true
		}
		loc, err := url.Parse(r.header.Get("Location"))
		if err != nil || r.status != http.StatusSeeOther || loc.Query().Get("state") != "st" || loc.Query().Get("iss") != base {
			t.Fatalf("authorization response: %d %q", r.status, r.header.Get("Location"))
		}
		return loc.Query().Get("code")
	}

	verifier := oauth2.GenerateVerifier()
	code := authorize(verifier)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("scope") != "orders:read" || time.Until(tok.Expiry) < 14*time.Minute {
		t.Fatalf("token %+v scope %v", tok, tok.Extra("scope"))
	}
	if r := g.get("/orders/1", tok.AccessToken); r.status != 200 || !strings.Contains(r.body, "sub=alice") || !strings.Contains(r.body, "client=spa") {
		t.Fatalf("the guarded path with the code's token: %d %s", r.status, r.body)
	}
	// The library's refresh (a public client names itself) rotates the pair.
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil || fresh.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %+v %v", fresh, err)
	}

	var re *oauth2.RetrieveError
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("replayed code: %v", err)
	}
	if r := g.get("/orders/1", fresh.AccessToken); r.status != 401 {
		t.Fatalf("the first exchange's tokens after a replay: %d %s", r.status, r.body)
	}
	if _, err := conf.Exchange(ctx, authorize(verifier), oauth2.VerifierOption(oauth2.GenerateVerifier())); !asRetrieveError(err, &re) ||
		re.ErrorCode != "invalid_grant" {
		t.Fatalf("wrong verifier: %v", err)
	}
}
