package issuer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// wireJWKS is the JWKS as a verifier sees it: marshalled and decoded
// generically, so tests check the JSON members rather than Go types.
func wireJWKS(t *testing.T, core *issuer.Core) []map[string]any {
	t.Helper()
	b, err := json.Marshal(core.JWKS())
	must(t, err)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	must(t, json.Unmarshal(b, &set))
	if set.Keys == nil {
		t.Fatalf("JWKS %s: keys is not an array", b)
	}
	return set.Keys
}

// TestJWKSWireFormat pins the published members per key type (RFC 7517/7518)
// and checks, with a decoder independent of the JOSE library that produced
// them, that each published key verifies the tokens it signs.
func TestJWKSWireFormat(t *testing.T) {
	members := map[string]string{
		issuer.AlgEdDSA: "alg crv kid kty use x",
		issuer.AlgES256: "alg crv kid kty use x y",
		issuer.AlgRS256: "alg e kid kty n use",
	}
	b64 := func(t *testing.T, s any) []byte {
		t.Helper()
		b, err := base64.RawURLEncoding.DecodeString(s.(string))
		must(t, err)
		return b
	}
	for _, alg := range []string{issuer.AlgEdDSA, issuer.AlgES256, issuer.AlgRS256, issuer.AlgHS256} {
		t.Run(alg, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			core, _ := newCore(t, clk, nil)
			is := newIssuer(t, core, issuer.Config{Alg: alg, AccessTTL: 10 * time.Minute})
			p := issuer.Principal{Kind: "user", Name: "alice", Subject: "u-1"}
			toks, err := is.Issue(context.Background(), issuer.Grant{Principal: p})
			must(t, err)
			keys := wireJWKS(t, core)
			if alg == issuer.AlgHS256 {
				if len(keys) != 0 {
					t.Fatalf("HMAC key published: %v", keys)
				}
				return
			}
			if len(keys) != 1 {
				t.Fatalf("JWKS %v", keys)
			}
			k := keys[0]
			var names []string
			for n := range k {
				names = append(names, n)
			}
			sort.Strings(names)
			if got := strings.Join(names, " "); got != members[alg] {
				t.Fatalf("members %q, want %q (%v)", got, members[alg], k)
			}
			hdr, _ := decode(t, toks.AccessToken)
			if k["kid"] != hdr["kid"] || k["alg"] != alg || k["use"] != "sig" {
				t.Fatalf("kid/alg/use %v, token header %v", k, hdr)
			}
			var pub crypto.PublicKey
			switch alg {
			case issuer.AlgEdDSA:
				if k["kty"] != "OKP" || k["crv"] != "Ed25519" {
					t.Fatalf("%v", k)
				}
				pub = ed25519.PublicKey(b64(t, k["x"]))
			case issuer.AlgES256:
				x, y := b64(t, k["x"]), b64(t, k["y"])
				if k["kty"] != "EC" || k["crv"] != "P-256" || len(x) != 32 || len(y) != 32 {
					t.Fatalf("%v: coordinates must be 32 bytes each (RFC 7518 §6.2.1.2)", k)
				}
				pub = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
			case issuer.AlgRS256:
				e := b64(t, k["e"])
				if k["kty"] != "RSA" || len(e) == 0 || e[0] == 0 {
					t.Fatalf("%v: exponent must be minimal big-endian (RFC 7518 §6.3.1.2)", k)
				}
				pub = &rsa.PublicKey{N: new(big.Int).SetBytes(b64(t, k["n"])), E: int(new(big.Int).SetBytes(e).Int64())}
			}
			_, err = jwt.Parse(toks.AccessToken, func(*jwt.Token) (any, error) { return pub, nil },
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(clk.Now))
			if err != nil {
				t.Fatalf("token does not verify with the published key: %v", err)
			}
		})
	}
}
