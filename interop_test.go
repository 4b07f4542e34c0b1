package tokengate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestInteropGoOAuth2 drives the token endpoint with golang.org/x/oauth2,
// a client library written against the RFC, not against this server.
func TestInteropGoOAuth2(t *testing.T) {
	g := startGateway(t, "")
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, g.tc.Client)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		cc := clientcredentials.Config{ClientID: "billing", ClientSecret: clientSecret, TokenURL: base + "/token",
			Scopes: []string{"orders:read"}, AuthStyle: style}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials, auth style %d: %v", style, err)
		}
		if r := g.get("/orders/1", tok.AccessToken); r.status != 200 || !strings.Contains(r.body, "sub=billing") {
			t.Fatalf("upstream with client token: %d %s", r.status, r.body)
		}
		// The library's HTTP client adds the header itself.
		res, err := cc.Client(ctx).Get(base + "/orders/2")
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("oauth2 client: %v %v", err, res)
		}
		res.Body.Close()
	}
	_, err := (&clientcredentials.Config{ClientID: "billing", ClientSecret: "wrong", TokenURL: base + "/token"}).Token(ctx)
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
		t.Fatalf("wrong secret: %v", err)
	}

	conf := oauth2.Config{ClientID: "narrow", ClientSecret: clientSecret, Endpoint: oauth2.Endpoint{TokenURL: base + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := conf.PasswordCredentialsToken(ctx, "alice", userPassword)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 14*time.Minute {
		t.Fatalf("password token %+v", tok)
	}
	// Expire it locally: the TokenSource must refresh with the rotated token.
	tok.Expiry = time.Now().Add(-time.Minute)
	ts := conf.TokenSource(ctx, tok)
	fresh, err := ts.Token()
	if err != nil {
		t.Fatalf("refresh via TokenSource: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" {
		t.Fatal("TokenSource did not get a rotated pair")
	}
	if r := g.get("/admin/x", fresh.AccessToken); r.status != 200 {
		t.Fatalf("refreshed token at the guard: %d %s", r.status, r.body)
	}

	public := oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: base + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	if _, err := public.PasswordCredentialsToken(ctx, "bob", userPassword); err != nil {
		t.Fatalf("password grant without a client: %v", err)
	}
	if _, err := public.PasswordCredentialsToken(ctx, "bob", "wrong"); !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("wrong password: %v", err)
	}
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	return errors.As(err, re)
}

// TestInteropJWKSVerification verifies an issued token with keys fetched by
// keyfunc/jwkset from the JWKS URL, independent of the gateway's own code.
func TestInteropJWKSVerification(t *testing.T) {
	g := startGateway(t, "")
	tok := g.passwordToken("alice")["access_token"].(string)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{base + "/.well-known/jwks.json"}, keyfunc.Override{Client: g.tc.Client})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok, k.Keyfunc, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(base),
		jwt.WithAudience(base), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("independent verification: %v", err)
	}
	if parsed.Header["typ"] != "at+jwt" {
		t.Fatalf("typ %v", parsed.Header["typ"])
	}
	claims := parsed.Claims.(jwt.MapClaims)
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "roles"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("RFC 9068 claim %s missing", c)
		}
	}
}
