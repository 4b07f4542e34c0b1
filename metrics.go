package tokengate

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// Guard outcomes, the values of tokengate_guard_decisions_total{outcome}.
const (
	outcomeAllowed   = iota // passed on to the next handler (allow paths included)
	outcomeNoToken          // 401: no bearer token
	outcomeBadToken         // 401/400: malformed, expired, wrongly signed...
	outcomeRevoked          // 401: revoked
	outcomeForbidden        // 403: a require rule failed
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"allowed", "no_token", "bad_token", "revoked", "forbidden"}

// metrics are tokengate's Prometheus collectors in one Caddy config's
// registry (served on the admin /metrics). The guard's counters are
// resolved once, so a request costs one atomic add.
type metrics struct {
	issued        *prometheus.CounterVec // route, grant
	loginFailures *prometheus.CounterVec // route, kind
	guard         [numOutcomes]prometheus.Counter
	throttled     prometheus.Counter
	budgetRefused prometheus.Counter
	storeErrors   *prometheus.CounterVec   // op
	storeLatency  *prometheus.HistogramVec // op
	audit         *zap.Logger
}

// register adds c to reg, or returns the collector already registered
// under the same descriptors (a config may register twice; Caddy gives
// each loaded config its own registry).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		// Not the same shape: keep counting, unexported, rather than fail the load.
	}
	return c
}

func newMetrics(reg prometheus.Registerer, app *App) *metrics {
	const ns = "tokengate"
	m := &metrics{
		issued: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tokens_issued_total",
			Help: "Access tokens issued, by route and grant (refresh_token for exchanges)."}, []string{"route", "grant"})),
		loginFailures: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "login_failures_total",
			Help: "Passwords, client secrets and entity secrets that did not match, by route and principal kind."}, []string{"route", "kind"})),
		throttled: register(reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "throttled_total",
			Help: "Requests refused for their rate."})),
		budgetRefused: register(reg, prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "hash_budget_refused_total",
			Help: "Password checks refused because the hashing budget was spent."})),
		storeErrors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "store_errors_total",
			Help: "Failed store operations, by operation."}, []string{"op"})),
		storeLatency: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "store_operation_seconds",
			Help: "Duration of store operations, by operation.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
			[]string{"op"})),
		audit: zap.NewNop(),
	}
	guard := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "guard_decisions_total",
		Help: "Requests the guard decided, by outcome."}, []string{"outcome"}))
	for i, name := range outcomeNames {
		m.guard[i] = guard.WithLabelValues(name)
	}
	register(reg, &stateCollector{app: app,
		keys: prometheus.NewDesc(ns+"_signing_keys", "Signing keys held, by state (published: not signing yet; active; retired: verifying only).",
			[]string{"state"}, nil),
		lag: prometheus.NewDesc(ns+"_revocation_sync_lag_seconds", "Time since revocations were last read from the store (the largest over stores).",
			nil, nil),
		hashing: prometheus.NewDesc(ns+"_password_checks_in_flight", "Password hashes being checked now.", nil, nil),
	})
	return m
}

// event turns an issuer event into counters and an audit entry.
func (m *metrics) event(_ context.Context, e issuer.Event) {
	switch e.Kind {
	case issuer.EventIssued, issuer.EventRefreshed:
		m.issued.WithLabelValues(e.Route, e.Grant).Inc()
	case issuer.EventLoginFailed:
		m.loginFailures.WithLabelValues(e.Route, e.NameKind).Inc()
	case issuer.EventThrottled:
		m.throttled.Inc()
	case issuer.EventBudgetRefused:
		m.budgetRefused.Inc()
	}
	// Throttled and budget-refused requests cost nothing and are counted
	// above: their audit entries are debug, so a flood writes no log.
	level := zapcore.InfoLevel
	if e.Kind == issuer.EventThrottled || e.Kind == issuer.EventBudgetRefused {
		level = zapcore.DebugLevel
	}
	ce := m.audit.Check(level, e.Kind)
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 8)
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, zap.String(k, v))
		}
	}
	add("route", e.Route)
	add("grant", e.Grant)
	add("kind", e.NameKind)
	add("name", e.Name)
	add("sub", e.Subject)
	add("client_id", e.ClientID)
	add("jti", e.JTI)
	add("sid", e.Session)
	add("kid", e.KID)
	add("alg", e.Alg)
	if !e.ExpiresAt.IsZero() {
		fields = append(fields, zap.Time("expires", e.ExpiresAt))
	}
	ce.Write(fields...)
}

// storeOp observes one store operation.
func (m *metrics) storeOp(op string, d time.Duration, err error) {
	m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// stateCollector reads the state of the config's issuers at scrape time.
type stateCollector struct {
	app                *App
	keys, lag, hashing *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.keys
	ch <- c.lag
	ch <- c.hashing
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]float64{"published": 0, "active": 0, "retired": 0}
	var lag time.Duration
	inFlight := 0
	for _, core := range c.app.cores() {
		now := core.Now()
		for _, k := range core.Keys() {
			switch {
			case k.ActivateAt.After(now):
				counts["published"]++
			case core.Superseded(k):
				counts["retired"]++
			default:
				counts["active"]++
			}
		}
		lag = max(lag, core.SyncLag())
		inFlight += core.PasswordChecksInFlight()
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, n, state)
	}
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag.Seconds())
	ch <- prometheus.MustNewConstMetric(c.hashing, prometheus.GaugeValue, float64(inFlight))
}
