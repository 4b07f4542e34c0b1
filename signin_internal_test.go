package tokengate

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
)

// TestProvisionLogin: the login block the login routes are built from has
// its defaults filled in, and a site without one has no browser sign-in.
func TestProvisionLogin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		login *config.Login
		want  *config.Login
	}{
		{"off", nil, nil},
		{"defaults", &config.Login{}, &config.Login{Title: "auth.example.com",
			SessionTTL: caddy.Duration(issuer.DefaultSessionTTL), SessionMaxTTL: caddy.Duration(issuer.DefaultSessionMaxTTL)}},
		{"set", &config.Login{Title: "Example Corp", Templates: "/", SessionTTL: caddy.Duration(time.Hour), SessionMaxTTL: caddy.Duration(2 * time.Hour)},
			&config.Login{Title: "Example Corp", Templates: "/", SessionTTL: caddy.Duration(time.Hour), SessionMaxTTL: caddy.Duration(2 * time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Gateway: config.Gateway{Login: tc.login}, iss: "https://auth.example.com:8443"}
			if err := h.provisionLogin(); err != nil {
				t.Fatal(err)
			}
			if (h.login == nil) != (tc.want == nil) || h.login != nil && *h.login != *tc.want {
				t.Fatalf("login %+v, want %+v", h.login, tc.want)
			}
			if wantPath := map[bool]string{true: login.PathAuthorize, false: ""}[tc.want != nil]; h.authorizePath() != wantPath {
				t.Fatalf("authorize path %q, want %q", h.authorizePath(), wantPath)
			}
			want := config.Login{SessionTTL: caddy.Duration(issuer.DefaultSessionTTL), SessionMaxTTL: caddy.Duration(issuer.DefaultSessionMaxTTL)}
			if tc.want != nil {
				want = *tc.want
			}
			cfg := h.issuerConfig("", time.Minute)
			if cfg.SessionTTL != time.Duration(want.SessionTTL) || cfg.SessionMaxTTL != time.Duration(want.SessionMaxTTL) {
				t.Fatalf("issuer session lifetimes %v %v, want %v %v", cfg.SessionTTL, cfg.SessionMaxTTL, want.SessionTTL, want.SessionMaxTTL)
			}
		})
	}
}
