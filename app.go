package tokengate

import (
	"fmt"
	"slices"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/issuer"
)

func init() { caddy.RegisterModule(new(App)) }

// App is the `tokengate` Caddy app. Handlers register with it while they
// are provisioned, and it opens their stores (creating files, generating
// keys) only when Caddy starts the config: `caddy validate`, which
// provisions without starting, writes nothing. It needs no configuration;
// a handler loads it.
type App struct {
	mu      sync.Mutex
	sites   []*Handler
	metrics *metrics
}

// Provision registers tokengate's metrics in this config's registry (so
// they appear on the admin /metrics) and names the audit logger
// (tokengate.audit).
func (a *App) Provision(ctx caddy.Context) error {
	a.metrics = newMetrics(ctx.GetMetricsRegistry(), a)
	a.metrics.audit = ctx.Logger().Named("audit")
	return nil
}

// cores lists the distinct issuers this config's sites run on.
func (a *App) cores() []*issuer.Core {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*issuer.Core
	for _, h := range a.sites {
		if h.core != nil && !slices.Contains(out, h.core) {
			out = append(out, h.core)
		}
	}
	return out
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "tokengate", New: func() caddy.Module { return new(App) }}
}

func (a *App) register(h *Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sites = append(a.sites, h)
	h.metrics = a.metrics
}

// Start opens the stores of every registered handler. A failure fails the
// whole config load, as a Provision error would.
func (a *App) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.sites {
		if err := h.start(); err != nil {
			for _, rest := range a.sites {
				rest.markFailed(err) // requests already waiting get a 503, not a hang
			}
			return fmt.Errorf("tokengate: %w", err)
		}
		a.metrics.attach(h.core)
	}
	return nil
}

// Stop does nothing: handlers release their stores in Cleanup, when the
// config they belong to is unloaded.
func (a *App) Stop() error { return nil }

var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
