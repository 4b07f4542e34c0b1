package tokengate

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/gateway/tokenauth"
	"github.com/tokengate/caddy-tokengate/internal/testkit/problemtest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestProblemTable: every issuer error and every kind of problem, through
// the guard's dialect: {error, error_description} with RFC 6750 / RFC
// 9449 codes (the ones the challenge carries), a Bearer challenge on every
// 401, Retry-After on every 429 and 503.
func TestProblemTable(t *testing.T) {
	internal := problemtest.Answer{Status: 500, Code: "server_error"}
	problemtest.Run(t, problemtest.Dialect{
		Dialect: guardDialect{h: &Handler{realm: "gw"}},
		Decode:  problemtest.ErrorBody,
		Table: map[httpx.Kind]problemtest.Answer{
			httpx.KindInternal:         internal,
			httpx.KindUnavailable:      {Status: 503, Code: "temporarily_unavailable"},
			httpx.KindBusy:             {Status: 503, Code: "temporarily_unavailable"},
			httpx.KindInvalidRequest:   {Status: 400, Code: "invalid_request"},
			httpx.KindNoToken:          {Status: 401, Code: "unauthorized"},
			httpx.KindInvalidToken:     {Status: 401, Code: "invalid_token"},
			httpx.KindInvalidDPoPProof: {Status: 401, Code: "invalid_dpop_proof"},
			httpx.KindUseDPoPNonce:     {Status: 401, Code: "use_dpop_nonce"},
			httpx.KindForbidden:        {Status: 403, Code: "insufficient_scope"},
			httpx.KindNotFound:         {Status: 404, Code: "not_found"},
			httpx.KindMethodNotAllowed: {Status: 405, Code: "method_not_allowed"},
			// The guard signs nobody in.
			httpx.KindThrottled:          internal,
			httpx.KindInvalidClient:      internal,
			httpx.KindInvalidCredentials: internal,
			httpx.KindInvalidGrant:       internal,
			httpx.KindInvalidScope:       internal,
			httpx.KindUnauthorizedClient: internal,
			httpx.KindUnsupportedGrant:   internal,
		},
		Challenge: `Bearer realm="gw"`,
	})
}

// TestGuardRefusalChallenges: a refused token's answer carries the
// challenge the token check sets, whatever its status, and its body the
// same code as the challenge.
func TestGuardRefusalChallenges(t *testing.T) {
	h := &Handler{realm: "gw", tokens: &tokenauth.Checker{Realm: "gw"}}
	for _, tc := range []struct {
		rf   *tokenauth.Refusal
		code string
		www  string
	}{
		{&tokenauth.Refusal{Kind: httpx.KindInvalidToken, Status: 401, Scheme: "Bearer", Description: "token has expired", Err: issuer.ErrTokenExpired},
			"invalid_token", `Bearer realm="gw", error="invalid_token", error_description="token has expired"`},
		{&tokenauth.Refusal{Kind: httpx.KindInvalidRequest, Status: 400, Scheme: "Bearer", Description: "repeated Authorization header"},
			"invalid_request", `Bearer realm="gw", error="invalid_request", error_description="repeated Authorization header"`},
		{&tokenauth.Refusal{Kind: httpx.KindForbidden, Status: 403, Scheme: "Bearer", Description: "the token lacks a required scope", Scope: "read write"},
			"insufficient_scope", `Bearer realm="gw", error="insufficient_scope", error_description="the token lacks a required scope", scope="read write"`},
		{&tokenauth.Refusal{Kind: httpx.KindUnavailable, Status: 503, Scheme: "DPoP", Description: "the DPoP proof could not be checked"},
			"temporarily_unavailable", ""},
	} {
		rec := httptest.NewRecorder()
		httpx.WriteProblem(rec, httptest.NewRequest(http.MethodGet, "/api", nil), guardDialect{h}, tc.rf.Problem())
		code, desc, err := problemtest.ErrorBody(rec.Code, rec.Body.Bytes())
		if err != nil || rec.Code != tc.rf.Status || code != tc.code || desc != tc.rf.Description || code != tc.rf.Code() {
			t.Fatalf("%d %s (%v), want %d %s", rec.Code, rec.Body, err, tc.rf.Status, tc.code)
		}
		if got := strings.Join(rec.Header().Values("WWW-Authenticate"), " | "); got != tc.www {
			t.Fatalf("WWW-Authenticate %q, want %q", got, tc.www)
		}
		if (rec.Code == 503) != (rec.Header().Get("Retry-After") == "1") {
			t.Fatalf("%d with Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
		}
	}
}
