package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Kind names what went wrong, whatever the dialect that words it. Each
// dialect's code table gives a kind its own code and status; a kind the
// dialect never produces answers as its KindInternal.
type Kind int

// The kinds of problem, as the routes told them apart when each wrote its
// own answers.
const (
	// KindInternal is a failure of the server that no caller caused (500).
	KindInternal Kind = iota
	// KindUnavailable says the store could not be reached (503).
	KindUnavailable
	// KindBusy says too many sign-ins are being checked (503).
	KindBusy
	// KindThrottled refuses a sign-in after too many failures (429).
	KindThrottled
	// KindInvalidRequest is a malformed request (400, or 413 for a body
	// over MaxBody).
	KindInvalidRequest
	// KindInvalidClient says client authentication failed (401).
	KindInvalidClient
	// KindInvalidCredentials says a user's or an entity's name or secret
	// is wrong (401).
	KindInvalidCredentials
	// KindInvalidGrant refuses a refresh token: invalid, reused, another
	// client's or bound to another DPoP key (400).
	KindInvalidGrant
	// KindInvalidScope asks for a scope that cannot be granted (400).
	KindInvalidScope
	// KindUnauthorizedClient is a client that may not use the grant (400).
	KindUnauthorizedClient
	// KindUnsupportedGrant is a grant type the route does not serve (400).
	KindUnsupportedGrant
	// KindNoToken says a route needs an access token and got none (401).
	KindNoToken
	// KindInvalidToken refuses an access token (401).
	KindInvalidToken
	// KindInvalidDPoPProof refuses a DPoP proof (401; the token endpoint
	// answers 400).
	KindInvalidDPoPProof
	// KindUseDPoPNonce asks for a proof with the server's nonce (401; the
	// token endpoint answers 400).
	KindUseDPoPNonce
	// KindForbidden says a valid token lacks the scope or role (403).
	KindForbidden
	// KindNotFound says the principal or route asked for does not exist
	// (404).
	KindNotFound
	// KindMethodNotAllowed is a method the route does not answer (405).
	KindMethodNotAllowed
)

// String names the kind in logs.
func (k Kind) String() string {
	switch k {
	case KindInternal:
		return "internal"
	case KindUnavailable:
		return "unavailable"
	case KindBusy:
		return "busy"
	case KindThrottled:
		return "throttled"
	case KindInvalidRequest:
		return "invalid_request"
	case KindInvalidClient:
		return "invalid_client"
	case KindInvalidCredentials:
		return "invalid_credentials"
	case KindInvalidGrant:
		return "invalid_grant"
	case KindInvalidScope:
		return "invalid_scope"
	case KindUnauthorizedClient:
		return "unauthorized_client"
	case KindUnsupportedGrant:
		return "unsupported_grant"
	case KindNoToken:
		return "no_token"
	case KindInvalidToken:
		return "invalid_token"
	case KindInvalidDPoPProof:
		return "invalid_dpop_proof"
	case KindUseDPoPNonce:
		return "use_dpop_nonce"
	case KindForbidden:
		return "forbidden"
	case KindNotFound:
		return "not_found"
	case KindMethodNotAllowed:
		return "method_not_allowed"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Status is the kind's HTTP status unless a dialect's code table says
// otherwise.
func (k Kind) Status() int {
	switch k {
	case KindUnavailable, KindBusy:
		return http.StatusServiceUnavailable
	case KindThrottled:
		return http.StatusTooManyRequests
	case KindInvalidRequest, KindInvalidGrant, KindInvalidScope, KindUnauthorizedClient, KindUnsupportedGrant:
		return http.StatusBadRequest
	case KindInvalidClient, KindInvalidCredentials, KindNoToken, KindInvalidToken, KindInvalidDPoPProof, KindUseDPoPNonce:
		return http.StatusUnauthorized
	case KindForbidden:
		return http.StatusForbidden
	case KindNotFound:
		return http.StatusNotFound
	case KindMethodNotAllowed:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// Problem is one refused or failed request as every dialect sees it before
// wording it: what went wrong, the status it has unless the dialect's code
// table says otherwise, the description the client reads, how long a 429
// or 503 asks the client to wait, and the cause, which is logged and never
// sent. It travels as an error.
type Problem struct {
	Kind        Kind
	Status      int
	Description string
	// RetryAfter is sent as Retry-After (whole seconds, at least 1) with
	// every 429 and 503.
	RetryAfter time.Duration
	// Err is the cause, for logs and errors.Is; never written to the client.
	Err error
}

func (p *Problem) Error() string { return p.Description }
func (p *Problem) Unwrap() error { return p.Err }

// New is a problem of kind with the kind's status.
func New(kind Kind, description string) *Problem {
	return &Problem{Kind: kind, Status: kind.Status(), Description: description}
}

// BadRequest is a KindInvalidRequest problem (400) described by format.
func BadRequest(format string, args ...any) *Problem {
	return New(KindInvalidRequest, fmt.Sprintf(format, args...))
}

// Status returns err's HTTP status: its own for a *Problem, else 400.
func Status(err error) int {
	var p *Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return http.StatusBadRequest
}

// storeUnavailable is what a 503 for an unreachable store says: the store
// failed, not the caller's credentials.
const storeUnavailable = "the token store is unavailable; retry shortly"

// StoreRetryAfter is the Retry-After of a 503 for an unreachable store:
// every request tries the store again, so clients may come back soon.
const StoreRetryAfter = time.Second

// Classify names what err says went wrong, by the identity of the errors
// of package issuer (and of a refused DPoP proof), never by their text. A
// *Problem stays what it is (Classify returns a copy, the caller's to
// change); an error Classify does not recognise is KindInternal, which the
// caller describes (Or). The order is the sign-in decision: a throttled or
// busy sign-in checked no credential, so it is that before it is wrong
// credentials; a sentinel the caller caused comes before a store outage it
// may wrap (a refresh token whose principal could not be re-read).
func Classify(err error) *Problem {
	var (
		p  *Problem
		te *issuer.ThrottledError
		de *dpop.Error
	)
	var out Problem
	switch {
	case errors.As(err, &p):
		cp := *p
		if err != error(p) { // keep what the caller wrapped it with, for the log
			cp.Err = err
		}
		return &cp
	case errors.As(err, &te):
		out = Problem{Kind: KindThrottled, Description: te.Error(), RetryAfter: te.RetryAfter}
	case errors.Is(err, issuer.ErrThrottled):
		out = Problem{Kind: KindThrottled, Description: issuer.ErrThrottled.Error()}
	case errors.Is(err, issuer.ErrBusy):
		out = Problem{Kind: KindBusy, Description: issuer.ErrBusy.Error(), RetryAfter: issuer.BusyRetryAfter}
	case errors.Is(err, issuer.ErrInvalidCredentials):
		out = Problem{Kind: KindInvalidCredentials, Description: issuer.ErrInvalidCredentials.Error()}
	case errors.Is(err, issuer.ErrRefreshKey):
		out = Problem{Kind: KindInvalidGrant, Description: "refresh token is bound to a DPoP key: send a DPoP proof signed with that key"}
	case errors.Is(err, issuer.ErrRefreshReused):
		out = Problem{Kind: KindInvalidGrant, Description: "refresh token was already used; every token of its grant is now revoked"}
	case errors.Is(err, issuer.ErrClientMismatch):
		out = Problem{Kind: KindInvalidGrant, Description: issuer.ErrClientMismatch.Error()}
	case errors.Is(err, issuer.ErrScopeWidened):
		out = Problem{Kind: KindInvalidScope, Description: issuer.ErrScopeWidened.Error()}
	case errors.Is(err, issuer.ErrRefreshInvalid):
		out = Problem{Kind: KindInvalidGrant, Description: issuer.ErrRefreshInvalid.Error()}
	case errors.Is(err, issuer.ErrCodeInvalid), errors.Is(err, issuer.ErrCodeReused):
		out = Problem{Kind: KindInvalidGrant, Description: issuer.ErrCodeInvalid.Error()}
	case errors.Is(err, issuer.ErrStateInvalid):
		out = Problem{Kind: KindInvalidRequest, Description: issuer.ErrStateInvalid.Error()}
	case errors.Is(err, issuer.ErrPKCE):
		out = Problem{Kind: KindInvalidGrant, Description: issuer.ErrPKCE.Error()}
	case errors.As(err, &de):
		out = Problem{Kind: KindInvalidDPoPProof, Description: de.Description}
		if de.Code == dpop.CodeUseNonce {
			out.Kind = KindUseDPoPNonce
		}
	case tokenError(err):
		// Verification errors are safe to show (issuer/verify.go).
		out = Problem{Kind: KindInvalidToken, Description: err.Error()}
	case errors.Is(err, issuer.ErrNotFound):
		out = Problem{Kind: KindNotFound, Description: issuer.ErrNotFound.Error()}
	case issuer.IsUnavailable(err):
		return unavailable(err)
	default:
		out = Problem{Kind: KindInternal, Description: "the server could not complete the request"}
	}
	out.Status, out.Err = out.Kind.Status(), err
	return &out
}

func unavailable(err error) *Problem {
	return &Problem{Kind: KindUnavailable, Status: http.StatusServiceUnavailable, Description: storeUnavailable,
		RetryAfter: StoreRetryAfter, Err: err}
}

// tokenError reports whether err is one of the access token's
// verification errors.
func tokenError(err error) bool {
	for _, target := range [...]error{issuer.ErrTokenMalformed, issuer.ErrTokenKey, issuer.ErrTokenSignature,
		issuer.ErrTokenExpired, issuer.ErrTokenNotYet, issuer.ErrTokenIssuer, issuer.ErrTokenAudience,
		issuer.ErrTokenType, issuer.ErrTokenRevoked, issuer.ErrTokenCrit} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Or returns p, described as failed when p is a failure of the server:
// the client learns what the server could not do, never why.
func (p *Problem) Or(failed string) *Problem {
	if p.Kind == KindInternal {
		p.Description = failed
	}
	return p
}

// Failure answers an error of an operation whose errors mean nothing to
// the client (issuing, revoking, looking a token up): 503 when the store
// could not be reached, else a failure of the server described as failed.
// Unlike Classify, it reads no sentinel as the client's doing.
func Failure(err error, failed string) *Problem {
	if issuer.IsUnavailable(err) {
		return unavailable(err)
	}
	return &Problem{Kind: KindInternal, Status: http.StatusInternalServerError, Description: failed, Err: err}
}

// SignInProblem is the one decision on a failed sign-in; nil when err is
// nil. A throttled or busy sign-in is refused as such (429 or 503: no
// credential was checked); wrong credentials get wrong, the route's own
// refusal (KindInvalidClient for a client, KindInvalidCredentials for a
// user or an entity); any other error is a Failure described as failed.
func SignInProblem(err error, wrong *Problem, failed string) *Problem {
	if err == nil {
		return nil
	}
	switch p := Classify(err); p.Kind {
	case KindThrottled, KindBusy:
		return p
	case KindInvalidCredentials:
		w := *wrong
		w.Err = err
		return &w
	}
	return Failure(err, failed)
}

// Dialect words problems for one family of routes: its code table gives a
// problem's kind its code and status, its envelope the body.
type Dialect interface {
	// Answer returns p's status and body in the dialect.
	Answer(r *http.Request, p *Problem) (status int, body any)
}

// Challenger is a Dialect whose answers carry WWW-Authenticate challenges:
// every 401 must (RFC 9110 §15.5.2), and a refused access token's answer
// does whatever its status (RFC 6750 §3).
type Challenger interface {
	// Challenge sets the challenge of p's answer with status, if it has one.
	Challenge(h http.Header, status int, p *Problem)
}

// ProblemLogger is a Dialect that logs the problems it answers (with
// LogProblem).
type ProblemLogger interface {
	LogProblem(r *http.Request, status int, p *Problem)
}

// WriteProblem answers p in dialect d: the dialect's status and envelope,
// Retry-After on every 429 and 503 (p.RetryAfter in whole seconds, at
// least 1), the dialect's challenge, no-store, and a log entry where the
// dialect keeps them. p.Err is never written.
func WriteProblem(w http.ResponseWriter, r *http.Request, d Dialect, p *Problem) {
	status, body := d.Answer(r, p)
	h := w.Header()
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		h.Set("Retry-After", strconv.FormatInt(issuer.RetryAfterSeconds(p.RetryAfter), 10))
	}
	if c, ok := d.(Challenger); ok {
		c.Challenge(h, status, p)
	}
	if l, ok := d.(ProblemLogger); ok {
		l.LogProblem(r, status, p)
	}
	WriteJSON(w, status, body)
}

// LogProblem logs the answer to p under msg, with fields naming the
// request, its description as reason and the caller's address. A failure
// of the server (KindInternal, KindUnavailable) is logged at error with
// its cause; a refusal at refusalLevel. It logs who and why, never what
// secret was presented.
func LogProblem(log *zap.Logger, msg string, r *http.Request, status int, p *Problem, fields ...zap.Field) {
	level := refusalLevel(status)
	if p.Kind == KindInternal || p.Kind == KindUnavailable {
		level = zapcore.ErrorLevel
	}
	ce := log.Check(level, msg)
	if ce == nil {
		return
	}
	fields = append(fields, zap.String("reason", p.Description), zap.String("remote_ip", r.RemoteAddr))
	if p.Err != nil {
		fields = append(fields, zap.NamedError("cause", p.Err))
	}
	ce.Write(fields...)
}

// refusalLevel is the level a refused request is logged at. A throttled
// request (429) computed nothing and is counted by the
// tokengate_throttled_total metric: logging each at info would let a flood
// from one address write a log line per request.
func refusalLevel(status int) zapcore.Level {
	if status == http.StatusTooManyRequests {
		return zapcore.DebugLevel
	}
	return zapcore.InfoLevel
}

// ErrorBody is the {error, error_description} body of RFC 6749 §5.2 and
// RFC 6750 §3, which the OAuth routes, the OWIN route and the guard answer
// with.
type ErrorBody struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}
