package issuer_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// clock is a controllable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const iss = "https://gw.example"

func newCore(t *testing.T, clk *clock, mk *issuer.MasterKey) (*issuer.Core, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tg.db")
	return openCoreAt(t, path, clk, mk), path
}

func openCoreAt(t *testing.T, path string, clk *clock, mk *issuer.MasterKey) *issuer.Core {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{MasterKey: mk, Clock: clk.Now, SyncInterval: -1, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	return core
}

func newIssuer(t *testing.T, core *issuer.Core, cfg issuer.Config) *issuer.Issuer {
	t.Helper()
	if cfg.Alg == "" {
		cfg.Alg = issuer.AlgEdDSA
	}
	if cfg.Issuer == "" {
		cfg.Issuer = iss
	}
	if err := core.EnsureKey(context.Background(), cfg.Alg); err != nil {
		t.Fatal(err)
	}
	is, err := issuer.New(core, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestIssueAndVerifyEveryAlgorithm(t *testing.T) {
	for _, alg := range []string{issuer.AlgEdDSA, issuer.AlgES256, issuer.AlgRS256, issuer.AlgHS256} {
		t.Run(alg, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			core, _ := newCore(t, clk, nil)
			is := newIssuer(t, core, issuer.Config{Alg: alg, Audience: "orders", AccessTTL: 10 * time.Minute})
			p := issuer.Principal{Kind: "user", Name: "alice", Subject: "u-1", Roles: []string{"admin"}}
			toks, err := is.Issue(context.Background(), issuer.Grant{Principal: p, ClientID: "web", Scope: "a b"})
			if err != nil {
				t.Fatal(err)
			}
			hdr, claims := decode(t, toks.AccessToken)
			if hdr["typ"] != "at+jwt" || hdr["alg"] != alg || hdr["kid"] == "" {
				t.Fatalf("header %v", hdr)
			}
			for k, want := range map[string]any{"iss": iss, "sub": "u-1", "client_id": "web", "scope": "a b"} {
				if claims[k] != want {
					t.Errorf("claim %s = %v, want %v", k, claims[k], want)
				}
			}
			if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != "orders" {
				t.Errorf("aud = %v", claims["aud"])
			}
			if claims["exp"].(float64)-claims["iat"].(float64) != 600 || claims["jti"] == "" {
				t.Errorf("exp/iat/jti = %v %v %v", claims["exp"], claims["iat"], claims["jti"])
			}
			c, err := is.Verify(toks.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if !c.HasRole("admin") || !c.HasScope("b") || c.HasScope("c") {
				t.Fatalf("claims %+v", c)
			}
			jwks := wireJWKS(t, core)
			if alg == issuer.AlgHS256 && len(jwks) != 0 {
				t.Fatalf("HMAC key published: %v", jwks)
			}
			if alg != issuer.AlgHS256 && (len(jwks) != 1 || jwks[0]["kid"] != hdr["kid"] || jwks[0]["alg"] != alg) {
				t.Fatalf("JWKS %v", jwks)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{AccessTTL: 10 * time.Minute})
	ctx := context.Background()
	p := issuer.Principal{Kind: "user", Name: "alice", Subject: "alice"}
	good, err := is.Issue(ctx, issuer.Grant{Principal: p})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := decode(t, good.AccessToken)
	parts := strings.Split(good.AccessToken, ".")
	// An HS256 token keyed with the published public key: the classic confusion attack.
	jwk := wireJWKS(t, core)[0]
	pub, _ := base64.RawURLEncoding.DecodeString(jwk["x"].(string))
	hmacConf := sign(t, jwt.SigningMethodHS256, hdr["kid"].(string), pub, claimsFor(clk.Now()))
	none := sign(t, jwt.SigningMethodNone, hdr["kid"].(string), jwt.UnsafeAllowNoneSignatureType, claimsFor(clk.Now()))
	unknownKid := strings.Replace(good.AccessToken, parts[0], b64json(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}), 1)
	tampered := parts[0] + "." + b64json(t, map[string]any{"sub": "root", "iss": iss, "aud": iss, "exp": 9999999999, "iat": clk.Now().Unix(), "jti": "x"}) + "." + parts[2]

	cases := []struct {
		name, token, iss string
		want             error
	}{
		{"empty", "", iss, issuer.ErrTokenMalformed},
		{"garbage", "a.b.c", iss, issuer.ErrTokenMalformed},
		{"tampered payload", tampered, iss, issuer.ErrTokenSignature},
		{"alg none", none, iss, issuer.ErrTokenSignature}, // refused before any key is looked up
		{"HMAC with the public key", hmacConf, iss, issuer.ErrTokenKey},
		{"unknown kid", unknownKid, iss, issuer.ErrTokenKey},
		{"wrong issuer", good.AccessToken, "https://other.example", issuer.ErrTokenIssuer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newIssuer(t, core, issuer.Config{Issuer: tc.iss}).Verify(tc.token); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("wrong audience", func(t *testing.T) {
		if _, err := newIssuer(t, core, issuer.Config{Audience: "other"}).Verify(good.AccessToken); !errors.Is(err, issuer.ErrTokenAudience) {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("expiry with leeway", func(t *testing.T) {
		clk.Add(10*time.Minute + issuer.Leeway - time.Second)
		if _, err := is.Verify(good.AccessToken); err != nil {
			t.Fatalf("within leeway: %v", err)
		}
		clk.Add(2 * time.Second)
		if _, err := is.Verify(good.AccessToken); !errors.Is(err, issuer.ErrTokenExpired) {
			t.Fatalf("after leeway: %v", err)
		}
	})
	t.Run("issued in the future", func(t *testing.T) {
		future, err := is.Issue(ctx, issuer.Grant{Principal: p})
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(-2 * time.Minute)
		defer clk.Add(2 * time.Minute)
		if _, err := is.Verify(future.AccessToken); !errors.Is(err, issuer.ErrTokenNotYet) {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		tok, err := is.Issue(ctx, issuer.Grant{Principal: p})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := is.RevokeToken(ctx, tok.AccessToken, ""); !ok || err != nil {
			t.Fatalf("RevokeToken = %v, %v", ok, err)
		}
		if _, err := is.Verify(tok.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("Verify = %v", err)
		}
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	hash, _ := issuer.HashPassword("pw")
	is := newIssuer(t, core, issuer.Config{Users: []issuer.User{{Name: "alice", PasswordHash: hash, Roles: []string{"r"}, Scopes: []string{"a", "b"}}}})
	ctx := context.Background()
	u, err := is.AuthenticateUser(ctx, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	first, err := is.Issue(ctx, issuer.Grant{Principal: issuer.UserPrincipal(u), ClientID: "web", Scope: "a b", Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.RefreshToken, "tgr_") || len(first.RefreshToken) < 40 {
		t.Fatalf("refresh token %q", first.RefreshToken)
	}
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: first.RefreshToken, ClientID: "other"}); !errors.Is(err, issuer.ErrClientMismatch) {
		t.Fatalf("refresh by another client: %v", err)
	}
	// Another client presenting it means it leaked: the grant is over.
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: first.RefreshToken, ClientID: "web"}); err == nil {
		t.Fatal("a refresh token presented by another client still works for its own")
	}
	if _, err := is.Verify(first.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("access token of a leaked grant: %v", err)
	}
	first, err = is.Issue(ctx, issuer.Grant{Principal: issuer.UserPrincipal(u), ClientID: "web", Scope: "a b", Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: first.RefreshToken, ClientID: "web", Scope: "a c"}); !errors.Is(err, issuer.ErrScopeWidened) {
		t.Fatalf("widening scope: %v", err)
	}
	first, _ = is.Issue(ctx, issuer.Grant{Principal: issuer.UserPrincipal(u), ClientID: "web", Scope: "a b", Refresh: true})
	second, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: first.RefreshToken, ClientID: "web", Scope: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken || second.Claims.Scope != "a" || second.Claims.SID != first.Claims.SID {
		t.Fatalf("rotation: %+v", second.Claims)
	}
	third, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: second.RefreshToken, ClientID: "web"})
	if err != nil {
		t.Fatal(err)
	}
	// Replaying the first token revokes the family: the live refresh token
	// and every access token of the family stop working.
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: first.RefreshToken, ClientID: "web"}); !errors.Is(err, issuer.ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: third.RefreshToken, ClientID: "web"}); !errors.Is(err, issuer.ErrRefreshInvalid) {
		t.Fatalf("descendant after reuse: %v", err)
	}
	for _, tok := range []string{second.AccessToken, third.AccessToken} {
		if _, err := is.Verify(tok); !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("family access token: %v", err)
		}
	}
	t.Run("expired", func(t *testing.T) {
		tok, _ := is.Issue(ctx, issuer.Grant{Principal: issuer.UserPrincipal(u), Refresh: true})
		clk.Add(31 * 24 * time.Hour)
		if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: tok.RefreshToken}); !errors.Is(err, issuer.ErrRefreshInvalid) {
			t.Fatalf("expired refresh: %v", err)
		}
	})
}

func TestAuthenticate(t *testing.T) {
	clk := &clock{t: time.Now()}
	core, _ := newCore(t, clk, nil)
	ctx := context.Background()
	bcryptRaw, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	must(t, err)
	bcryptHash := string(bcryptRaw)
	argon, _ := issuer.HashPassword("s3cret")
	gen, _ := issuer.NewSecret("tgs_")
	must(t, core.Store().PutClient(ctx, issuer.Client{ID: "stored", SecretHash: core.Hasher().Hash(gen)}))
	must(t, core.Store().PutUser(ctx, issuer.User{Name: "carol", PasswordHash: argon}))
	is := newIssuer(t, core, issuer.Config{
		Users:   []issuer.User{{Name: "bob", PasswordHash: bcryptHash}},
		Clients: []issuer.Client{{ID: "cfg", SecretHash: argon}},
	})
	for _, tc := range []struct {
		user, pw string
		ok       bool
	}{{"bob", "secret", true}, {"bob", "Secret", false}, {"carol", "s3cret", true}, {"carol", "", false}, {"nobody", "x", false}} {
		_, err := is.AuthenticateUser(ctx, tc.user, tc.pw)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, issuer.ErrInvalidCredentials)) {
			t.Errorf("AuthenticateUser(%s) = %v", tc.user, err)
		}
	}
	for _, tc := range []struct {
		id, secret string
		ok         bool
	}{{"stored", gen, true}, {"stored", gen + "x", false}, {"cfg", "s3cret", true}, {"cfg", "s3cret", true}, {"cfg", "nope", false}, {"nobody", gen, false}} {
		_, err := is.AuthenticateClient(ctx, tc.id, tc.secret)
		if (err == nil) != tc.ok {
			t.Errorf("AuthenticateClient(%s) = %v", tc.id, err)
		}
	}
}

func TestPrivateKeysSealedUnderMasterKey(t *testing.T) {
	clk := &clock{t: time.Now()}
	mkStr, _ := issuer.NewMasterKeyString()
	mk, err := issuer.ParseMasterKey(mkStr)
	must(t, err)
	core, path := newCore(t, clk, mk)
	is := newIssuer(t, core, issuer.Config{})
	recs, err := core.Store().ListKeys(context.Background())
	must(t, err)
	if len(recs) != 1 || !strings.HasPrefix(recs[0].Private, "gcm1:") {
		t.Fatalf("stored private key not sealed: %.12q", recs[0].Private)
	}
	tok, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	must(t, err)
	core.Close()
	// Under no key, or another one, the store refuses to open, naming
	// both fingerprints, rather than failing later on a secret read.
	other, _ := issuer.NewMasterKeyString()
	otherKey, err := issuer.ParseMasterKey(other)
	must(t, err)
	for _, k := range []*issuer.MasterKey{nil, otherKey} {
		st, err := sqlstore.Open(context.Background(), "sqlite", path)
		must(t, err)
		_, err = issuer.OpenCore(context.Background(), st, issuer.CoreOptions{MasterKey: k, Clock: clk.Now, SyncInterval: -1})
		st.Close()
		var mm *issuer.SealMismatchError
		if !errors.As(err, &mm) || mm.Stored != mk.Fingerprint() || mm.Configured != k.Fingerprint() {
			t.Fatalf("opening under %s: %v", k.Fingerprint(), err)
		}
	}
	// With it, the key signs what verifies as before.
	is2 := newIssuer(t, openCoreAt(t, path, clk, mk), issuer.Config{})
	if _, err := is2.Verify(tok.AccessToken); err != nil {
		t.Fatalf("verify after reopening: %v", err)
	}
	if _, err := issuer.ParseMasterKey("short"); err == nil {
		t.Fatal("short master key accepted")
	}
}

func TestGrantScope(t *testing.T) {
	allowed := []string{"a", "b"}
	for _, tc := range []struct {
		req, want string
		ok        bool
	}{{"", "a b", true}, {"a", "a", true}, {"b a a", "b a", true}, {"a c", "", false}} {
		got, ok := issuer.GrantScope(tc.req, allowed)
		if got != tc.want || ok != tc.ok {
			t.Errorf("GrantScope(%q) = %q, %v", tc.req, got, ok)
		}
	}
}

func claimsFor(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": iss, "aud": iss, "sub": "root", "jti": "j", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func sign(t *testing.T, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
	s, err := tok.SignedString(key)
	must(t, err)
	return s
}

func decode(t *testing.T, tok string) (map[string]any, map[string]any) {
	parts := strings.Split(tok, ".")
	var h, c map[string]any
	for i, dst := range []*map[string]any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		must(t, err)
		must(t, json.Unmarshal(b, dst))
	}
	return h, c
}

func b64json(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	must(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifiedCacheRechecks makes sure a token served from the verified
// cache is still held to issuer, audience, expiry, key and revocation.
func TestVerifiedCacheRechecks(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{AccessTTL: time.Minute})
	ctx := context.Background()
	tok, err := is.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	must(t, err)
	if _, err := is.Verify(tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	// Sites on one core share its cache of verified tokens.
	if _, err := newIssuer(t, core, issuer.Config{Issuer: "https://other"}).Verify(tok.AccessToken); !errors.Is(err, issuer.ErrTokenIssuer) {
		t.Fatalf("cached token, other issuer: %v", err)
	}
	if _, err := newIssuer(t, core, issuer.Config{Audience: "other-aud"}).Verify(tok.AccessToken); !errors.Is(err, issuer.ErrTokenAudience) {
		t.Fatalf("cached token, other audience: %v", err)
	}
	if _, err := is.Verify(tok.AccessToken); err != nil {
		t.Fatalf("cached token: %v", err)
	}
	must(t, core.Revoke(ctx, issuer.Revocation{Kind: issuer.RevokeJTI, Key: tok.Claims.ID, ExpiresAt: clk.Now().Add(time.Hour)}))
	if _, err := is.Verify(tok.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("cached token after revocation: %v", err)
	}
	tok2, err := is.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	must(t, err)
	if _, err := is.Verify(tok2.AccessToken); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute + issuer.Leeway)
	if _, err := is.Verify(tok2.AccessToken); !errors.Is(err, issuer.ErrTokenExpired) {
		t.Fatalf("cached token after expiry: %v", err)
	}
}

// TestVerifyRefusesCrit: a JWS whose crit header names an extension (or is
// present at all: this gateway understands none) is refused even with a
// valid signature (RFC 7515 §4.1.11).
func TestVerifyRefusesCrit(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, path := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{AccessTTL: 10 * time.Minute})
	claims := claimsFor(clk.Now())
	if _, err := is.Verify(issuertest.SignWithStoredKey(t, path, claims, nil)); err != nil {
		t.Fatalf("the same token without crit: %v", err)
	}
	for name, extra := range map[string]map[string]any{
		"unknown extension": {"crit": []string{"exp-ext"}, "exp-ext": 1},
		"empty crit":        {"crit": []string{}},
		"crit naming b64":   {"crit": []string{"b64"}, "b64": true},
		"crit not a list":   {"crit": "exp-ext"},
	} {
		t.Run(name, func(t *testing.T) {
			tok := issuertest.SignWithStoredKey(t, path, claims, extra)
			if _, err := is.Verify(tok); !errors.Is(err, issuer.ErrTokenCrit) {
				t.Fatalf("Verify = %v, want %v", err, issuer.ErrTokenCrit)
			}
		})
	}
}

// TestUnmarkedStoreSealedUnderAnotherKey: a store from before fingerprints
// were recorded, whose values were sealed under another key (as when a
// master_key is added to an installation that used a generated one), is
// refused at open, not with a 500 on the first secret read.
func TestUnmarkedStoreSealedUnderAnotherKey(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	oldStr, _ := issuer.NewMasterKeyString()
	oldKey, _ := issuer.ParseMasterKey(oldStr)
	path := filepath.Join(t.TempDir(), "tg.db")
	st, err := sqlstore.Open(ctx, "sqlite", path)
	must(t, err)
	rec, err := issuer.GenerateKey(issuer.AlgEdDSA, 1, oldKey, clk.Now(), clk.Now(), issuer.DefaultKeyLifetime)
	must(t, err)
	must(t, st.AddKey(ctx, rec)) // written without a Core: no fingerprint recorded
	st.Close()
	newStr, _ := issuer.NewMasterKeyString()
	newKey, _ := issuer.ParseMasterKey(newStr)
	st, err = sqlstore.Open(ctx, "sqlite", path)
	must(t, err)
	defer st.Close()
	_, err = issuer.OpenCore(ctx, st, issuer.CoreOptions{MasterKey: newKey, SyncInterval: -1})
	var mm *issuer.SealMismatchError
	if !errors.As(err, &mm) || mm.Unopened != 1 || !strings.Contains(err.Error(), newKey.Fingerprint()) {
		t.Fatalf("want a seal mismatch, got %v", err)
	}
	if fp, _ := issuer.StoredFingerprint(ctx, st); fp != "" {
		t.Fatalf("a refused open recorded fingerprint %s", fp)
	}
}

// TestVerifiedClientSecretFollowsTheHash: the cache that spares a client
// with an argon2id/bcrypt secret the slow check on every request holds a
// secret only for the hash it was verified against. When the stored hash
// changes (the secret was replaced), the old secret is refused at once.
func TestVerifiedClientSecretFollowsTheHash(t *testing.T) {
	clk := &clock{t: time.Now()}
	core, _ := newCore(t, clk, nil)
	ctx := context.Background()
	cheap := issuer.HashParams{Memory: 64, Time: 1, Threads: 1}
	oldHash, err := issuer.HashPasswordWith(cheap, "old-secret")
	must(t, err)
	newHash, err := issuer.HashPasswordWith(cheap, "new-secret")
	must(t, err)
	must(t, core.Store().PutClient(ctx, issuer.Client{ID: "svc", SecretHash: oldHash}))
	is := newIssuer(t, core, issuer.Config{})
	for range 2 { // the second check is served by the cache
		if _, err := is.AuthenticateClient(ctx, "svc", "old-secret"); err != nil {
			t.Fatalf("old secret before the change: %v", err)
		}
	}
	must(t, core.Store().PutClient(ctx, issuer.Client{ID: "svc", SecretHash: newHash}))
	if _, err := is.AuthenticateClient(ctx, "svc", "old-secret"); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatalf("old secret after the hash changed: %v, want ErrInvalidCredentials", err)
	}
	if _, err := is.AuthenticateClient(ctx, "svc", "new-secret"); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

// A refresh token issued before keys began with the issue time (32
// random bytes, kept under its SHA-256) still refreshes after the
// upgrade, and its successor has the new format.
func TestRefreshTokenOfTheFormatBefore(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, path := newCore(t, clk, nil)
	hash, _ := issuer.HashPassword("pw")
	is := newIssuer(t, core, issuer.Config{Users: []issuer.User{{Name: "alice", PasswordHash: hash, Scopes: []string{"a"}}}})
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old, err := issuer.NewSecret("tgr_")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(old))
	if err := st.CreateRefresh(ctx, issuer.RefreshRecord{Hash: hex.EncodeToString(sum[:]), Family: "fam-before", Subject: "alice",
		Kind: issuer.KindUser, Principal: "alice", ClientID: "web", Scope: "a", Issuer: iss,
		ExpiresAt: clk.Now().Add(time.Hour), AuthTime: clk.Now().Add(-time.Minute)}, false); err != nil {
		t.Fatal(err)
	}
	toks, p, err := is.Refresh(ctx, issuer.RefreshRequest{Token: old, ClientID: "web"})
	if err != nil {
		t.Fatalf("refreshing a token of the format before: %v", err)
	}
	if p.Name != "alice" || toks.Claims.SID != "fam-before" || len(toks.RefreshToken) == len(old) {
		t.Fatalf("principal %q, session %q, successor %q", p.Name, toks.Claims.SID, toks.RefreshToken)
	}
	latest, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: toks.RefreshToken, ClientID: "web"})
	if err != nil {
		t.Fatalf("refreshing its successor: %v", err)
	}
	// The old token, used, is a reuse now (past the grace): it ends the family.
	clk.Add(time.Hour / 2)
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: old, ClientID: "web"}); !errors.Is(err, issuer.ErrRefreshReused) {
		t.Fatalf("reusing the old token: %v", err)
	}
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: latest.RefreshToken, ClientID: "web"}); err == nil {
		t.Fatal("the family outlived a reuse of its token of the format before")
	}
}
