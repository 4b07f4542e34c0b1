package login

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
)

//go:embed pages/*.html
var defaultPages embed.FS

//go:embed static/*
var static embed.FS

// The pages an operator may replace (Caddyfile login { templates <dir> }).
var pageNames = []string{"login.html", "consent.html", "error.html"}

// Pages are the HTML templates of the sign-in pages.
type Pages struct{ t *template.Template }

// LoadPages parses the embedded pages, then the operator's from dir ("":
// none), and executes each against sample data, so a broken template
// fails when the site loads, not at a user's sign-in.
func LoadPages(dir string) (*Pages, error) {
	t, err := template.New("pages").ParseFS(defaultPages, "pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing the built-in pages: %w", err)
	}
	if dir != "" {
		for _, name := range append([]string{"layout.html"}, pageNames...) {
			path := filepath.Join(dir, name)
			b, err := os.ReadFile(path)
			if os.IsNotExist(err) {
				continue // the built-in one stays
			}
			if err != nil {
				return nil, fmt.Errorf("login templates: %w", err)
			}
			if _, err := t.New(name).Parse(string(b)); err != nil {
				return nil, fmt.Errorf("login templates: %s: %w", path, err)
			}
		}
	}
	p := &Pages{t: t}
	sample := page{Title: "Example", Heading: "Sign in", Client: "app", Authz: "a", CSRF: "c", Username: "u", Error: "e",
		Scopes: []string{"openid"}, RetryAfter: 1, Target: "https://app.example/cb", Fields: []field{{"code", "x"}}}
	for _, name := range append(pageNames, "formpost.html") {
		if err := p.t.ExecuteTemplate(io.Discard, name, sample); err != nil {
			return nil, fmt.Errorf("login templates: %s does not render: %w", name, err)
		}
	}
	return p, nil
}

// page is what every template gets.
type page struct {
	Title, Heading string
	Client         string
	Authz, CSRF    string
	Username       string
	Error          string
	Scopes         []string
	RetryAfter     int64
	Target         string // form_post: where the form goes
	Fields         []field
}

type field struct{ Name, Value string }
