// Package browsertest drives a real headless Chromium (Debian's chromium)
// from tests with chromedp: start it, fill and submit forms, take
// screenshots, and run axe-core in the page. A test that cannot start it
// skips with the reason, and fails under CI.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// unavailable skips t, or fails it under CI, where every test must run.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("headless Chromium is needed under CI: %s", why)
	}
	t.Skipf("SKIPPING: no headless Chromium (%s); scripts/chromium.sh installs it", why)
}

// ExecPath is the Chromium binary: $TOKENGATE_CHROMIUM, else chromium on
// the PATH.
func ExecPath() (string, error) {
	if p := os.Getenv("TOKENGATE_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium is not installed")
}

// Start returns a browser tab's context, closed when the test ends; every
// action under it times out after a minute so a stuck page fails rather
// than hangs.
func Start(t testing.TB) context.Context {
	t.Helper()
	path, err := ExecPath()
	if err != nil {
		unavailable(t, err.Error())
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("no-sandbox", os.Geteuid() == 0), // root in containers
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		unavailable(t, "starting "+path+": "+err.Error())
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	return ctx
}

// Do runs steps in the tab, failing t on an error.
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// Get runs one action that returns a value, failing t on an error.
func Get[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Screenshot saves a full-page PNG (quality 100 is PNG; less is JPEG) of the current page as it lays out at
// width CSS pixels.
func Screenshot(t testing.TB, ctx context.Context, width int64, path string) {
	t.Helper()
	Do(t, ctx, chromedp.EmulateViewport(width, 800))
	png := Get(t, ctx, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	Do(t, ctx, chromedp.EmulateViewport(1280, 900))
}

// Violation is an axe-core rule a page breaks.
type Violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  int    `json:"nodes"`
}

// axePath is axe-core's script: $TOKENGATE_AXE, else the copy npm put in
// interop/node.
func axePath() string {
	if p := os.Getenv("TOKENGATE_AXE"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "../../../interop/node/node_modules/axe-core/axe.min.js")
}

// Axe runs axe-core on the current page. The script is evaluated through
// the DevTools protocol, which a page's CSP does not govern.
func Axe(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	src, err := os.ReadFile(axePath())
	if err != nil {
		unavailable(t, "axe-core is not installed (npm ci --prefix interop/node): "+err.Error())
	}
	Get(t, ctx, chromedp.Evaluate[bool](string(src)+"\n;true"))
	raw := Get(t, ctx, chromedp.Evaluate[string](`axe.run(document).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length}))))`,
		chromedp.EvalAwaitPromise))
	var vs []Violation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("axe result %q: %v", raw, err)
	}
	return vs
}

// Serious are the violations of serious or critical impact.
func Serious(vs []Violation) []Violation {
	var out []Violation
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}
