// Command signcaddy is Caddy with one extra handler, sign_only, for
// scripts/bench.sh: it answers every request with a freshly signed Ed25519
// JWT (claims like tokengate's access tokens) and does nothing else, so
// the script can measure the ceiling of any Ed25519 issuance against a
// static respond on the same machine in the same run.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func init() {
	caddy.RegisterModule(SignOnly{})
	httpcaddyfile.RegisterHandlerDirective("sign_only", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		s := new(SignOnly)
		return s, s.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("sign_only", httpcaddyfile.Before, "respond")
}

func main() { caddycmd.Main() }

// SignOnly reads the request body and answers with a new Ed25519-signed
// JWT in an OAuth token response.
type SignOnly struct{ key ed25519.PrivateKey }

// CaddyModule returns the Caddy module information.
func (SignOnly) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sign_only", New: func() caddy.Module { return new(SignOnly) }}
}

// Provision makes the signing key.
func (s *SignOnly) Provision(caddy.Context) (err error) {
	_, s.key, err = ed25519.GenerateKey(rand.Reader)
	return err
}

// UnmarshalCaddyfile takes no arguments: `sign_only`.
func (s *SignOnly) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

var header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`))

func (s *SignOnly) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	now := time.Now().Unix()
	claims := `{"iss":"http://` + r.Host + `","sub":"bench","aud":"http://` + r.Host + `","client_id":"bench","roles":["reader"],"kind":"client","iat":` +
		strconv.FormatInt(now, 10) + `,"exp":` + strconv.FormatInt(now+7200, 10) + `,"jti":"` + base64.RawURLEncoding.EncodeToString(jti[:]) + `"}`
	in := header + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	token := in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, []byte(in)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 7200})
}

var (
	_ caddyhttp.MiddlewareHandler = (*SignOnly)(nil)
	_ caddy.Provisioner           = (*SignOnly)(nil)
	_ caddyfile.Unmarshaler       = (*SignOnly)(nil)
)
