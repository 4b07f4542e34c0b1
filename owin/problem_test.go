package owin

import (
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/testkit/problemtest"
)

// TestProblemTable: every issuer error and every kind of problem, through
// the OWIN dialect: RFC 6749 codes in {error, error_description}, a Basic
// challenge on every 401, Retry-After on every 429 and 503.
func TestProblemTable(t *testing.T) {
	internal := problemtest.Answer{Status: 500, Code: "server_error"}
	problemtest.Run(t, problemtest.Dialect{
		Dialect: dialect{s: &Server{Realm: "gw", Log: zap.NewNop()}},
		Decode:  problemtest.ErrorBody,
		Table: map[httpx.Kind]problemtest.Answer{
			httpx.KindInternal:           internal,
			httpx.KindUnavailable:        {Status: 503, Code: "temporarily_unavailable"},
			httpx.KindBusy:               {Status: 503, Code: "temporarily_unavailable"},
			httpx.KindThrottled:          {Status: 429, Code: "too_many_requests"},
			httpx.KindInvalidRequest:     {Status: 400, Code: "invalid_request"},
			httpx.KindUnsupportedGrant:   {Status: 400, Code: "unsupported_grant_type"},
			httpx.KindInvalidClient:      {Status: 401, Code: "invalid_client"},
			httpx.KindUnauthorizedClient: {Status: 400, Code: "unauthorized_client"},
			httpx.KindInvalidCredentials: {Status: 400, Code: "invalid_grant"},
			httpx.KindInvalidGrant:       {Status: 400, Code: "invalid_grant"},
			// The OWIN route grants no scope and takes no access token.
			httpx.KindInvalidScope:     internal,
			httpx.KindNoToken:          internal,
			httpx.KindInvalidToken:     internal,
			httpx.KindInvalidDPoPProof: internal,
			httpx.KindUseDPoPNonce:     internal,
			httpx.KindForbidden:        internal,
			httpx.KindNotFound:         internal,
			httpx.KindMethodNotAllowed: internal,
		},
		Challenge: `Basic realm="gw", charset="UTF-8"`,
	})
}
