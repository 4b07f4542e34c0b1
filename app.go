package tokengate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/internal/gateway/storeconf"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

func init() { caddy.RegisterModule(new(App)) }

// App is the `tokengate` Caddy app: it owns the issuer Cores its sites run
// on, as Caddy's pki app owns its CAs. Handlers load it while they are
// provisioned (ctx.App("tokengate"), which provisions it on demand, so a
// config need not name it) and register with it; when Caddy starts the
// config, the app starts them and each asks it for its Core (App.Core).
// Stores are opened (files created, keys generated) only then: `caddy
// validate`, which provisions without starting, writes nothing. It needs
// no configuration.
type App struct {
	metrics *metrics

	mu    sync.Mutex
	sites []*Handler
	held  map[string]*pooledCore // this config's holds on corePool, by pool key
}

// corePool shares one Core per store across the sites of a config and
// across config reloads, so keys, caches and the revocation set survive
// `caddy reload`. It must outlive any one App (a reload starts the new
// config's app before the old one is cleaned up), so it is the one
// package-level value here, as Caddy's own pools are; only App's methods
// touch it.
var corePool = caddy.NewUsagePool()

// pooledCore is one store's shared Core. The UsagePool closes it when the
// last config holding it is cleaned up.
type pooledCore struct {
	core      *issuer.Core
	masterKey string // fingerprint: sites sharing a store must agree on it
	// metrics are the latest started config's: its store observer (given
	// to sqlstore.Open once, so it forwards) and its event sink.
	metrics atomic.Pointer[metrics]
}

func (pc *pooledCore) Destruct() error { return pc.core.Close() }

// observe forwards a store operation to the current config's metrics.
func (pc *pooledCore) observe(op string, d time.Duration, err error) {
	if m := pc.metrics.Load(); m != nil {
		m.storeOp(op, d, err)
	}
}

// attach sends the Core's events and store operations to m: the latest
// config to start takes over a Core shared across reloads.
func (pc *pooledCore) attach(m *metrics) {
	pc.metrics.Store(m)
	pc.core.SetEvents(m.event)
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "tokengate", New: func() caddy.Module { return new(App) }}
}

// Provision registers tokengate's metrics in this config's registry (so
// they appear on the admin /metrics) and names the audit logger
// (tokengate.audit).
func (a *App) Provision(ctx caddy.Context) error {
	a.metrics = newMetrics(ctx.GetMetricsRegistry(), a)
	a.metrics.audit = ctx.Logger().Named("audit")
	return nil
}

// register adds a provisioned site, to be started with the app.
func (a *App) register(h *Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sites = append(a.sites, h)
	h.metrics = a.metrics
}

// Start starts every registered site: each opens (or joins) its Core. A
// failure fails the whole config load, as a Provision error would, and
// every site answers 503 to the requests already waiting for it.
func (a *App) Start() error {
	a.mu.Lock()
	sites := a.sites
	a.mu.Unlock()
	for _, h := range sites {
		if err := h.start(); err != nil {
			for _, rest := range sites {
				rest.started.finish(err) // requests already waiting get a 503, not a hang
			}
			return fmt.Errorf("tokengate: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, pc := range a.held {
		pc.attach(a.metrics)
	}
	return nil
}

// Stop does nothing: the Cores are released in Cleanup, after every app
// stopped, so requests a graceful shutdown still serves find them open.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's holds on the shared Cores; the last
// config holding one closes it. Caddy calls it when the config is
// unloaded, and when it failed to load or start.
func (a *App) Cleanup() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for key := range a.held {
		_, err := corePool.Delete(key)
		errs = append(errs, err)
	}
	a.held = nil
	return errors.Join(errs...)
}

// CoreSpec names the Core a site runs on, as the site configures it.
type CoreSpec struct {
	// Store is where the Core keeps its state; nil or no driver: the
	// default SQLite store in Caddy's data directory. Placeholders in the
	// DSN are expanded.
	Store *config.Store
	// MasterKey seals private keys and entity secrets; "": the key
	// generated in Caddy's data directory. Placeholders are expanded.
	MasterKey string
	// Log is the site's logger. Should this call open the Core, the store
	// and Core log under it (named issuer).
	Log *zap.Logger
}

// Core returns the Core of spec's store, opening it (creating and
// migrating the store) unless this config or a previous one already did.
// Sites sharing a store must give the same master key. Call it once the
// config starts, never while provisioning: `caddy validate` must write
// nothing. The Core stays open until the last config holding it is
// cleaned up.
func (a *App) Core(ctx context.Context, spec CoreSpec) (*issuer.Core, error) {
	repl := caddy.NewReplacer()
	driver, dsn := storeconf.Location(spec.Store, repl)
	mk, keyFile, err := storeconf.ResolveMasterKey(repl.ReplaceKnown(spec.MasterKey, ""), true)
	if err != nil {
		return nil, err
	}
	fingerprint := mk.Fingerprint()
	log := cmp.Or(spec.Log, zap.NewNop())
	key := driver + ":" + dsn
	// The store is opened under the lock, which only a metrics scrape of
	// a config still starting could wait for: Start asks for the Cores one
	// site at a time.
	a.mu.Lock()
	defer a.mu.Unlock()
	pc, ok := a.held[key]
	if !ok {
		val, _, err := corePool.LoadOrNew(key, func() (caddy.Destructor, error) {
			return openCore(ctx, driver, dsn, mk, keyFile, log)
		})
		if err != nil {
			return nil, err
		}
		pc = val.(*pooledCore)
		if pc.masterKey != fingerprint {
			_, _ = corePool.Delete(key) // refused: hold nothing
		} else {
			if a.held == nil {
				a.held = map[string]*pooledCore{}
			}
			a.held[key] = pc
		}
	}
	if pc.masterKey != fingerprint {
		return nil, fmt.Errorf("sites sharing a store must use the same master_key: this one has %s, the store is open with %s",
			fingerprint, pc.masterKey)
	}
	return pc.core, nil
}

// openCore opens the store at driver:dsn and the Core on it, sealing with
// mk (generated into keyFile when that is set).
func openCore(ctx context.Context, driver, dsn string, mk *issuer.MasterKey, keyFile string, log *zap.Logger) (*pooledCore, error) {
	fingerprint := mk.Fingerprint()
	pc := &pooledCore{masterKey: fingerprint}
	ilog := log.Named("issuer")
	st, err := sqlstore.Open(ctx, driver, dsn, sqlstore.WithLogger(ilog), sqlstore.WithObserver(pc.observe))
	if err != nil {
		return nil, err
	}
	if pc.core, err = issuer.OpenCore(ctx, st, issuer.CoreOptions{MasterKey: mk, Logger: ilog, Retention: issuer.Leeway}); err != nil {
		st.Close()
		return nil, fmt.Errorf("opening issuer on %s store: %w", driver, err)
	}
	if driver == "sqlite" {
		log.Info("store opened", zap.String("driver", driver), zap.String("path", dsn))
	}
	if keyFile != "" {
		log.Warn("no master_key configured: sealing with the generated key; set master_key in production "+
			"(the same on every instance sharing a store) and back it up", zap.String("file", keyFile),
			zap.String("fingerprint", fingerprint))
	} else {
		log.Info("sealing with the configured master_key", zap.String("fingerprint", fingerprint))
	}
	return pc, nil
}

// cores lists the distinct Cores this config's sites run on.
func (a *App) cores() []*issuer.Core {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*issuer.Core, 0, len(a.held))
	for _, pc := range a.held {
		out = append(out, pc.core)
	}
	return out
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*pooledCore)(nil)
)
