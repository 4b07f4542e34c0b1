// Package problemtest is the error table every dialect's test runs: each
// error package issuer defines (bare, wrapped, and wrapping an outage) and
// each kind of problem goes through httpx.Classify and the dialect's
// writer, and the answer's status, envelope and headers are checked
// against the dialect's code table.
package problemtest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Case is an error and the kind Classify must name it.
type Case struct {
	// Name is the error's name in package issuer (a sentinel such as
	// "ErrBusy", or an error type such as "ThrottledError"), or says what
	// the case is.
	Name string
	Err  error
	Kind httpx.Kind
	// RetryAfter is the Retry-After a 429 or 503 of it carries; "" is 1.
	RetryAfter string
}

// Cases returns every error of package issuer that can reach a route (the
// completeness test holds it to issuer's source), a refused DPoP proof, an
// unknown error and a request problem.
func Cases() []Case {
	return []Case{
		{Name: "ErrThrottled", Err: issuer.ErrThrottled, Kind: httpx.KindThrottled},
		{Name: "ThrottledError", Err: &issuer.ThrottledError{RetryAfter: 2500 * time.Millisecond}, Kind: httpx.KindThrottled, RetryAfter: "3"},
		{Name: "ErrBusy", Err: issuer.ErrBusy, Kind: httpx.KindBusy},
		{Name: "ErrInvalidCredentials", Err: issuer.ErrInvalidCredentials, Kind: httpx.KindInvalidCredentials},
		{Name: "ErrRefreshKey", Err: issuer.ErrRefreshKey, Kind: httpx.KindInvalidGrant},
		{Name: "ErrRefreshReused", Err: issuer.ErrRefreshReused, Kind: httpx.KindInvalidGrant},
		{Name: "ErrClientMismatch", Err: issuer.ErrClientMismatch, Kind: httpx.KindInvalidGrant},
		{Name: "ErrRefreshInvalid", Err: issuer.ErrRefreshInvalid, Kind: httpx.KindInvalidGrant},
		{Name: "ErrCodeInvalid", Err: issuer.ErrCodeInvalid, Kind: httpx.KindInvalidGrant},
		{Name: "ErrCodeReused", Err: issuer.ErrCodeReused, Kind: httpx.KindInvalidGrant},
		{Name: "ErrPKCE", Err: issuer.ErrPKCE, Kind: httpx.KindInvalidGrant},
		{Name: "ErrStateInvalid", Err: issuer.ErrStateInvalid, Kind: httpx.KindInvalidRequest},
		{Name: "ErrScopeWidened", Err: issuer.ErrScopeWidened, Kind: httpx.KindInvalidScope},
		{Name: "ErrTokenMalformed", Err: issuer.ErrTokenMalformed, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenKey", Err: issuer.ErrTokenKey, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenSignature", Err: issuer.ErrTokenSignature, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenExpired", Err: issuer.ErrTokenExpired, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenNotYet", Err: issuer.ErrTokenNotYet, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenIssuer", Err: issuer.ErrTokenIssuer, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenAudience", Err: issuer.ErrTokenAudience, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenType", Err: issuer.ErrTokenType, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenRevoked", Err: issuer.ErrTokenRevoked, Kind: httpx.KindInvalidToken},
		{Name: "ErrTokenCrit", Err: issuer.ErrTokenCrit, Kind: httpx.KindInvalidToken},
		{Name: "ErrNotFound", Err: issuer.ErrNotFound, Kind: httpx.KindNotFound},
		{Name: "ErrStoreUnavailable", Err: issuer.ErrStoreUnavailable, Kind: httpx.KindUnavailable},
		{Name: "ErrConflict", Err: issuer.ErrConflict, Kind: httpx.KindInternal},
		{Name: "ErrNoSecretsKey", Err: issuer.ErrNoSecretsKey, Kind: httpx.KindInternal},
		{Name: "ErrNoMasterKey", Err: issuer.ErrNoMasterKey, Kind: httpx.KindInternal},
		{Name: "ErrBadHash", Err: issuer.ErrBadHash, Kind: httpx.KindInternal},
		{Name: "SealMismatchError", Err: &issuer.SealMismatchError{Stored: "a", Configured: "b"}, Kind: httpx.KindInternal},
		// A sentinel the caller caused wins over the outage it wraps (a
		// refresh token whose principal could not be re-read).
		{Name: "ErrRefreshInvalid wrapping ErrStoreUnavailable", Err: fmt.Errorf("%w: %w", issuer.ErrRefreshInvalid, issuer.ErrStoreUnavailable), Kind: httpx.KindInvalidGrant},
		{Name: "dpop.Error invalid_dpop_proof", Err: &dpop.Error{Code: dpop.CodeInvalidProof, Description: "the proof has expired"}, Kind: httpx.KindInvalidDPoPProof},
		{Name: "dpop.Error use_dpop_nonce", Err: &dpop.Error{Code: dpop.CodeUseNonce, Description: "the proof's nonce is not current"}, Kind: httpx.KindUseDPoPNonce},
		{Name: "unknown error", Err: errors.New("disk on fire"), Kind: httpx.KindInternal},
		{Name: "request problem", Err: httpx.BadRequest("parameter %q is repeated", "scope"), Kind: httpx.KindInvalidRequest},
	}
}

// Wrapped is c's error wrapped with what was being done, as callers wrap
// errors: it classifies the same, and its cause is never written.
func (c Case) Wrapped() error { return fmt.Errorf("%s: %w", Cause, c.Err) }

// Cause is the text Wrapped adds, which no answer may contain.
const Cause = "cause-for-the-log-only"

// Answer is what a dialect answers a kind with. Code is the envelope's
// code as Dialect.Decode reads it; Message, when set, is the message
// whatever the problem's description (a dialect that words a kind its own
// way).
type Answer struct {
	Status  int
	Code    string
	Message string
}

// Dialect is one dialect under test.
type Dialect struct {
	Dialect httpx.Dialect
	// Table is the dialect's answer to every kind (the test fails on a
	// kind it lacks, so a new kind needs a row in every dialect).
	Table map[httpx.Kind]Answer
	// Decode reads the code and the message out of a body in the
	// dialect's envelope, refusing any other shape (see Strict).
	Decode func(status int, body []byte) (code, message string, err error)
	// Challenge is how every 401's WWW-Authenticate begins; a dialect
	// that never answers 401 leaves it "".
	Challenge string
}

// Strict decodes body into v, refusing unknown fields and trailing data.
func Strict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the envelope")
	}
	return nil
}

// ErrorBody decodes the {error, error_description} envelope.
func ErrorBody(_ int, body []byte) (string, string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return "", "", err
	}
	if _, ok := raw["error_description"]; !ok || len(raw) != 2 {
		return "", "", fmt.Errorf("want exactly error and error_description: %s", body)
	}
	var e httpx.ErrorBody
	err := Strict(body, &e)
	return e.Code, e.Description, err
}

// Kinds returns every kind of problem.
func Kinds() []httpx.Kind {
	var out []httpx.Kind
	for k := httpx.Kind(0); !strings.HasPrefix(k.String(), "Kind("); k++ {
		out = append(out, k)
	}
	return out
}

// Run writes every kind of problem and every Case (bare and wrapped)
// through d, checking each answer's status, envelope and headers.
func Run(t *testing.T, d Dialect) {
	t.Helper()
	for _, k := range Kinds() {
		if _, ok := d.Table[k]; !ok {
			t.Errorf("the table has no row for %v", k)
		}
	}
	for _, k := range Kinds() {
		t.Run("kind "+k.String(), func(t *testing.T) {
			check(t, d, httpx.New(k, "a problem of kind "+k.String()), "")
		})
	}
	for _, c := range Cases() {
		for name, err := range map[string]error{c.Name: c.Err, c.Name + " wrapped": c.Wrapped()} {
			t.Run(name, func(t *testing.T) {
				p := httpx.Classify(err)
				var rp *httpx.Problem
				if p.Kind != c.Kind || (!errors.As(c.Err, &rp) && !errors.Is(p, c.Err)) {
					t.Fatalf("Classify(%v) = %v (cause %v), want %v with the cause kept", err, p.Kind, p.Err, c.Kind)
				}
				check(t, d, p, c.RetryAfter)
			})
		}
	}
}

// check writes p through d and checks the answer.
func check(t *testing.T, d Dialect, p *httpx.Problem, retryAfter string) {
	t.Helper()
	want := d.Table[p.Kind]
	rec := httptest.NewRecorder()
	httpx.WriteProblem(rec, httptest.NewRequest(http.MethodPost, "/route", nil), d.Dialect, p)
	code, msg, err := d.Decode(rec.Code, rec.Body.Bytes())
	switch {
	case err != nil:
		t.Fatalf("%d %s: not the dialect's envelope: %v", rec.Code, rec.Body, err)
	case rec.Code != want.Status || code != want.Code:
		t.Fatalf("%v answered %d %q, want %d %q: %s", p.Kind, rec.Code, code, want.Status, want.Code, rec.Body)
	case want.Message != "" && msg != want.Message, want.Message == "" && msg != p.Description:
		t.Fatalf("message %q, want %q", msg, cmp.Or(want.Message, p.Description))
	case p.Kind != httpx.KindInvalidToken && strings.Contains(rec.Body.String(), Cause):
		// A verification error is its own description (issuer/verify.go);
		// any other cause stays in the log.
		t.Fatalf("the cause reached the client: %s", rec.Body)
	}
	h := rec.Header()
	if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("Content-Type %q, Cache-Control %q", h.Get("Content-Type"), h.Get("Cache-Control"))
	}
	ra := h.Get("Retry-After")
	switch rec.Code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if secs, err := strconv.Atoi(ra); err != nil || secs < 1 || ra != cmp.Or(retryAfter, "1") {
			t.Fatalf("%d with Retry-After %q, want %q", rec.Code, ra, cmp.Or(retryAfter, "1"))
		}
	default:
		if ra != "" {
			t.Fatalf("%d with Retry-After %q", rec.Code, ra)
		}
	}
	if www := h.Get("WWW-Authenticate"); rec.Code == http.StatusUnauthorized && (d.Challenge == "" || !strings.HasPrefix(www, d.Challenge)) {
		t.Fatalf("401 with WWW-Authenticate %q, want %q…", www, d.Challenge)
	}
}
