package browsertest_test

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tokengate/caddy-tokengate/internal/testkit/browsertest"
)

const good = `<!doctype html><html lang="en"><head><title>Good</title></head><body><main><h1>Sign in</h1>
<form method="post" action="/done"><label for="u">Name</label><input id="u" name="u"><button type="submit">Go</button></form></main></body></html>`

const bad = `<!doctype html><html><head><title>Bad</title></head><body><input name="u"><img src="/x.png">
<p style="color:#ccc;background:#fff">faint</p></body></html>`

// TestKit: axe-core finds what a bad page breaks and nothing serious on a
// good one, under a CSP that allows no script; forms submit; screenshots
// have the width asked for.
func TestKit(t *testing.T) {
	mux := http.NewServeMux()
	serve := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(body))
		}
	}
	mux.HandleFunc("/good", serve(good))
	mux.HandleFunc("/bad", serve(bad))
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		_, _ = w.Write([]byte("<!doctype html><title>done</title><p id=got>" + r.PostForm.Get("u") + "</p>"))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	ctx := browsertest.Start(t)

	browsertest.Do(t, ctx, chromedp.Navigate(ts.URL+"/good"))
	if s := browsertest.Serious(browsertest.Axe(t, ctx)); len(s) != 0 {
		t.Fatalf("good page: %+v", s)
	}
	browsertest.Do(t, ctx, chromedp.Navigate(ts.URL+"/bad"))
	found := map[string]bool{}
	for _, v := range browsertest.Serious(browsertest.Axe(t, ctx)) {
		found[v.ID] = true
	}
	for _, id := range []string{"label", "image-alt"} {
		if !found[id] {
			t.Errorf("axe missed %s on the bad page: %v", id, found)
		}
	}

	browsertest.Do(t, ctx, chromedp.Navigate(ts.URL+"/good"), chromedp.SendKeys(chromedp.CSS("#u"), "alice"),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitVisible(chromedp.CSS("#got")))
	if got := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#got"))); got != "alice" {
		t.Fatalf("submitted form: %q", got)
	}

	path := filepath.Join(t.TempDir(), "shot.png")
	browsertest.Do(t, ctx, chromedp.Navigate(ts.URL+"/good"))
	browsertest.Screenshot(t, ctx, 375, path)
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot: %v", err)
	}
	if w := binary.BigEndian.Uint32(b[16:20]); w != 375 {
		t.Fatalf("screenshot width %d, want 375", w)
	}
}
