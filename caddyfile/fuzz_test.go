package caddyfile

import (
	"errors"
	"reflect"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/config"
)

// parseText lexes and parses a tokengate directive.
func parseText(text string) (config.Gateway, error) {
	var g config.Gateway
	tokens, err := caddyfile.Tokenize([]byte(text), "Caddyfile")
	if err != nil {
		return g, err
	}
	return g, Parse(caddyfile.NewDispenser(tokens), &g)
}

// FuzzParse: parsing never panics, and a block that parses is written back
// by Format into a block that parses to the same configuration, and that
// Format writes again byte for byte.
func FuzzParse(f *testing.F) {
	f.Add("tokengate {\n\tissuer https://a.example\n\tuser alice $2a$h roles admin,ops scopes x\n}")
	f.Add("tokengate")
	f.Add("tokengate {\n\tlogin {\n\t\tsession_ttl 8h\n\t\tsession_max_ttl 7d\n\t\ttitle \"Example Corp\"\n\t\ttemplates /etc/tg\n\t}\n}")
	f.Add("tokengate {\n\tlogin\n\tclient spa public redirect_uri http://127.0.0.1/cb https://a.example/cb?x=1,2 scopes a\n}")
	f.Add("tokengate {\n\tclient web h roles consent, redirect_uri https://a.example/cb post_logout_redirect_uri https://a.example/ pkce optional consent\n}")
	f.Add("tokengate {\n\tuser alice h roles admin email alice@example.com name \"Alice Example\"\n}")
	f.Fuzz(func(t *testing.T, text string) {
		g, err := parseText(text)
		if err != nil {
			return
		}
		out, err := Format(g)
		if errors.Is(err, errUnquotable) {
			return // a value with both ` and \ has no Caddyfile spelling
		}
		if err != nil {
			t.Fatalf("Format: %v", err)
		}
		back, err := parseText(out)
		if err != nil {
			t.Fatalf("Format's output does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(g, back) {
			t.Fatalf("round trip changed the configuration:\n%#v\n%#v\n%s", g, back, out)
		}
		if again, _ := Format(back); again != out {
			t.Fatalf("Format is not stable:\n%s\n%s", out, again)
		}
	})
}
