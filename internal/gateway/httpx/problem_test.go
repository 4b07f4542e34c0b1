package httpx_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/testkit/problemtest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestClassify: every error of issuer gets its kind, the kind's status and
// its Retry-After, keeps its cause, and is described by what it is.
func TestClassify(t *testing.T) {
	descriptions := map[string]string{
		"ThrottledError":      "too many failed sign-ins; try again in 3 s",
		"ErrBusy":             issuer.ErrBusy.Error(),
		"ErrRefreshKey":       "refresh token is bound to a DPoP key: send a DPoP proof signed with that key",
		"ErrRefreshReused":    "refresh token was already used; every token of its grant is now revoked",
		"ErrRefreshInvalid":   "refresh token is invalid, expired or revoked",
		"ErrStoreUnavailable": "the token store is unavailable; retry shortly",
		"ErrTokenExpired":     "token has expired",
	}
	retry := map[httpx.Kind]time.Duration{httpx.KindBusy: issuer.BusyRetryAfter, httpx.KindUnavailable: httpx.StoreRetryAfter}
	for _, c := range problemtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			bare := httpx.Classify(c.Err)
			if want, ok := descriptions[c.Name]; ok && bare.Description != want {
				t.Fatalf("description %q, want %q", bare.Description, want)
			}
			_, isProblem := c.Err.(*httpx.Problem) // a problem has no cause of its own
			for _, err := range []error{c.Err, c.Wrapped()} {
				p := httpx.Classify(err)
				if p.Kind != c.Kind || p.Status != c.Kind.Status() || (!isProblem && !errors.Is(p.Err, c.Err)) {
					t.Fatalf("%v: kind %v status %d, want %v %d", err, p.Kind, p.Status, c.Kind, c.Kind.Status())
				}
				// A verification error is its own description (it is
				// safe to show); any other does not change when wrapped.
				if c.Kind != httpx.KindInvalidToken && p.Description != bare.Description {
					t.Fatalf("%v: description %q, bare %q", err, p.Description, bare.Description)
				}
				if want := retry[c.Kind]; c.Kind != httpx.KindThrottled && p.RetryAfter != want {
					t.Fatalf("%v: RetryAfter %v, want %v", err, p.RetryAfter, want)
				}
			}
		})
	}
	if p := httpx.Classify(&issuer.ThrottledError{RetryAfter: 7 * time.Second}); p.RetryAfter != 7*time.Second {
		t.Fatalf("throttled: RetryAfter %v", p.RetryAfter)
	}
	// A problem stays itself, and the caller may change its copy.
	orig := httpx.BadRequest("bad %s", "x")
	p := httpx.Classify(orig)
	p.Kind = httpx.KindInvalidClient
	if orig.Kind != httpx.KindInvalidRequest || p.Description != "bad x" || p.Status != 400 {
		t.Fatalf("Classify of a problem: %+v (original %+v)", p, orig)
	}
}

// TestSignInProblem: the one sign-in decision, for every error: throttled
// or busy, then wrong credentials, then a failure (503 for an outage).
func TestSignInProblem(t *testing.T) {
	wrong := httpx.New(httpx.KindInvalidClient, "client authentication failed")
	for _, c := range problemtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			p := httpx.SignInProblem(c.Wrapped(), wrong, "the server could not check the credentials")
			want, desc := httpx.KindInternal, "the server could not check the credentials"
			switch {
			case c.Kind == httpx.KindThrottled, c.Kind == httpx.KindBusy:
				want, desc = c.Kind, httpx.Classify(c.Err).Description
			case c.Kind == httpx.KindInvalidCredentials:
				want, desc = wrong.Kind, wrong.Description
			case issuer.IsUnavailable(c.Err): // whatever else it wraps
				want, desc = httpx.KindUnavailable, "the token store is unavailable; retry shortly"
			}
			if p.Kind != want || p.Description != desc || p.Status != want.Status() || !errors.Is(p, c.Err) {
				t.Fatalf("%v %d %q (cause %v), want %v %q with the cause", p.Kind, p.Status, p.Description, p.Err, want, desc)
			}
		})
	}
	if httpx.SignInProblem(nil, wrong, "x") != nil {
		t.Fatal("a sign-in without error is a problem")
	}
	if wrong.Err != nil {
		t.Fatal("SignInProblem changed the route's refusal")
	}
}

// TestFailure: an opaque operation's error is 503 for an outage, else a
// failure described as the caller says, whatever sentinel it wraps.
func TestFailure(t *testing.T) {
	for _, c := range problemtest.Cases() {
		p := httpx.Failure(c.Wrapped(), "the server could not issue a token")
		want, desc := httpx.KindInternal, "the server could not issue a token"
		if issuer.IsUnavailable(c.Err) {
			want, desc = httpx.KindUnavailable, "the token store is unavailable; retry shortly"
		}
		if p.Kind != want || p.Description != desc || !errors.Is(p, c.Err) {
			t.Errorf("%s: %v %q, want %v %q", c.Name, p.Kind, p.Description, want, desc)
		}
	}
	if p := httpx.Classify(errors.New("x")).Or("could not"); p.Description != "could not" {
		t.Fatalf("Or on a failure: %q", p.Description)
	}
	if p := httpx.Classify(issuer.ErrNotFound).Or("could not"); p.Description != "not found" {
		t.Fatalf("Or on a refusal: %q", p.Description)
	}
}

// plain is a dialect with neither challenge nor log.
type plain struct{}

func (plain) Answer(_ *http.Request, p *httpx.Problem) (int, any) {
	return p.Status, httpx.ErrorBody{Code: p.Kind.String(), Description: p.Description}
}

// full challenges every 401 and logs.
type full struct {
	plain
	log *zap.Logger
}

func (full) Challenge(h http.Header, status int, _ *httpx.Problem) {
	if status == http.StatusUnauthorized {
		httpx.Challenge(h, "Bearer", "")
	}
}

func (f full) LogProblem(r *http.Request, status int, p *httpx.Problem) {
	httpx.LogProblem(f.log, "refused", r, status, p, zap.String("route", "test"))
}

// TestWriteProblem: Retry-After on every 429 and 503 (whole seconds
// rounded up, at least 1) and on nothing else; the dialect's challenge and
// log; no-store; the cause never in the body.
func TestWriteProblem(t *testing.T) {
	for _, tc := range []struct {
		p     *httpx.Problem
		retry string
	}{
		{&httpx.Problem{Kind: httpx.KindThrottled, Status: 429, Description: "slow down", RetryAfter: 1500 * time.Millisecond}, "2"},
		{&httpx.Problem{Kind: httpx.KindThrottled, Status: 429, Description: "slow down", RetryAfter: 200 * time.Millisecond}, "1"},
		{&httpx.Problem{Kind: httpx.KindUnavailable, Status: 503, Description: "down"}, "1"},
		{&httpx.Problem{Kind: httpx.KindBusy, Status: 503, Description: "busy", RetryAfter: 3 * time.Second}, "3"},
		{&httpx.Problem{Kind: httpx.KindInvalidGrant, Status: 400, Description: "no", RetryAfter: time.Minute}, ""},
		{httpx.New(httpx.KindInvalidToken, "expired"), ""},
	} {
		rec := httptest.NewRecorder()
		tc.p.Err = errors.New("the cause")
		httpx.WriteProblem(rec, httptest.NewRequest(http.MethodPost, "/x", nil), plain{}, tc.p)
		if rec.Code != tc.p.Status || rec.Header().Get("Retry-After") != tc.retry || rec.Header().Get("Cache-Control") != "no-store" ||
			strings.Contains(rec.Body.String(), "the cause") {
			t.Errorf("%v: %d, Retry-After %q (want %q), %v %s", tc.p.Kind, rec.Code, rec.Header().Get("Retry-After"), tc.retry, rec.Header(), rec.Body)
		}
		if rec.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%v: a dialect without challenges sent one", tc.p.Kind)
		}
	}

	core, logs := observer.New(zapcore.DebugLevel)
	d := full{log: zap.New(core)}
	r := httptest.NewRequest(http.MethodPost, "/x", nil)
	for _, p := range []*httpx.Problem{
		httpx.New(httpx.KindInvalidCredentials, "wrong"),
		{Kind: httpx.KindThrottled, Status: 429, Description: "slow down"},
		httpx.Failure(errors.New("disk on fire"), "could not"),
		httpx.Failure(issuer.ErrStoreUnavailable, "could not"),
	} {
		rec := httptest.NewRecorder()
		httpx.WriteProblem(rec, r, d, p)
		if www := rec.Header().Get("WWW-Authenticate"); (rec.Code == 401) != (www == `Bearer realm="tokengate"`) {
			t.Errorf("%d: WWW-Authenticate %q", rec.Code, www)
		}
	}
	want := []struct {
		level zapcore.Level
		cause string
	}{{zapcore.InfoLevel, ""}, {zapcore.DebugLevel, ""}, {zapcore.ErrorLevel, "disk on fire"}, {zapcore.ErrorLevel, "the token store is unavailable"}}
	entries := logs.All()
	if len(entries) != len(want) {
		t.Fatalf("%d log entries, want %d", len(entries), len(want))
	}
	for i, e := range entries {
		fields := e.ContextMap()
		cause, _ := fields["cause"].(string)
		if e.Level != want[i].level || e.Message != "refused" || fields["route"] != "test" || fields["reason"] == "" || cause != want[i].cause {
			t.Errorf("entry %d: %v %q %v, want level %v cause %q", i, e.Level, e.Message, fields, want[i].level, want[i].cause)
		}
	}
}

// TestKinds: every kind has a name and a status of its own class.
func TestKinds(t *testing.T) {
	kinds := problemtest.Kinds()
	if len(kinds) < 18 || kinds[0] != httpx.KindInternal {
		t.Fatalf("kinds %v", kinds)
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k.String()] || k.Status() < 400 {
			t.Errorf("%v: repeated name or status %d", k, k.Status())
		}
		seen[k.String()] = true
	}
}
