package tokengate_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// docBlock is a fenced code block of a Markdown file.
type docBlock struct {
	info string // the fence's info string: caddyfile, sh, …
	line int    // of the opening fence
	text string
}

// docBlocks returns the fenced code blocks of a Markdown file, those
// indented in list items too (the fence's indentation is removed from
// every line).
func docBlocks(src string) []docBlock {
	var out []docBlock
	var cur *docBlock
	indent := ""
	for i, l := range strings.Split(src, "\n") {
		trimmed := strings.TrimLeft(l, " ")
		if cur == nil {
			if info, ok := strings.CutPrefix(trimmed, "```"); ok {
				cur = &docBlock{info: strings.TrimSpace(info), line: i + 1}
				indent = l[:len(l)-len(trimmed)]
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			out = append(out, *cur)
			cur = nil
			continue
		}
		cur.text += strings.TrimPrefix(l, indent) + "\n"
	}
	return out
}

// TestDocCaddyfiles adapts every ```caddyfile block of the README and of
// docs/*.md through Caddy's Caddyfile adapter, with the tokengate directive
// registered, so that a snippet that drifts from the parser fails here. A
// block must be a whole Caddyfile, formatted as `caddy fmt` writes it (the
// adapter warns otherwise, and so would Caddy for whoever copies it); one
// that is deliberately partial is fenced ```caddyfile-fragment instead.
func TestDocCaddyfiles(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range append([]string{"README.md"}, docs...) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range docBlocks(string(src)) {
			if b.info != "caddyfile" {
				continue
			}
			n++
			t.Run(fmt.Sprintf("%s:%d", filepath.Base(f), b.line), func(t *testing.T) {
				js, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(b.text),
					map[string]any{"filename": fmt.Sprintf("%s:%d", f, b.line)})
				if err != nil {
					t.Fatalf("%s line %d: %v\n%s", f, b.line, err, b.text)
				}
				for _, w := range warnings {
					t.Errorf("%s line %d: %s (block line %d)", f, b.line, w.Message, w.Line)
				}
				if strings.Contains(b.text, "tokengate {") && !bytes.Contains(js, []byte(`"handler":"tokengate"`)) {
					t.Errorf("%s line %d: the block has a tokengate directive but its JSON no tokengate handler:\n%s", f, b.line, js)
				}
			})
		}
	}
	if n < 5 {
		t.Fatalf("found only %d caddyfile blocks in the README and docs/: is the extraction broken?", n)
	}
}

// headingSlug is the anchor GitHub gives a Markdown heading: lower case,
// spaces as hyphens, punctuation other than - and _ dropped.
func headingSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocLinks: every relative link of the README and docs/*.md names a
// file of the repository, and every #anchor a heading of its target, so
// moving a section cannot leave a link behind.
func TestDocLinks(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{"README.md"}, docs...)
	anchors := map[string]map[string]bool{}
	texts := map[string]string{}
	heading := regexp.MustCompile(`(?m)^#+ (.*)$`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Headings inside code blocks (shell comments) are no headings.
		var prose strings.Builder
		in := false
		for l := range strings.SplitSeq(string(src), "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, " "), "```") {
				in = !in
				continue
			}
			if !in {
				prose.WriteString(l + "\n")
			}
		}
		texts[f] = prose.String()
		anchors[f] = map[string]bool{}
		for _, m := range heading.FindAllStringSubmatch(texts[f], -1) {
			anchors[f][headingSlug(m[1])] = true
		}
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	n := 0
	for _, f := range files {
		for _, m := range link.FindAllStringSubmatch(texts[f], -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			path, anchor, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s links to %s, which does not exist", f, target)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if a, ok := anchors[dest]; !ok {
				t.Errorf("%s links to %s: anchors are only checked in the README and docs/", f, target)
			} else if !a[anchor] {
				t.Errorf("%s links to %s, but %s has no such heading", f, target, dest)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d relative links: is the extraction broken?", n)
	}
}
