package oauth

import (
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/testkit/problemtest"
)

// TestProblemTable: every issuer error and every kind of problem, through
// the OAuth dialect: RFC 6749 codes, a Basic challenge on every 401,
// Retry-After on every 429 and 503.
func TestProblemTable(t *testing.T) {
	internal := problemtest.Answer{Status: 500, Code: ErrServerError}
	problemtest.Run(t, problemtest.Dialect{
		Dialect: dialect{s: &Server{Realm: "gw", Log: zap.NewNop()}},
		Decode:  problemtest.ErrorBody,
		Table: map[httpx.Kind]problemtest.Answer{
			httpx.KindInternal:           internal,
			httpx.KindUnavailable:        {Status: 503, Code: ErrTemporarilyUnavailable},
			httpx.KindBusy:               {Status: 503, Code: ErrTemporarilyUnavailable},
			httpx.KindThrottled:          {Status: 429, Code: ErrTooManyRequests},
			httpx.KindInvalidRequest:     {Status: 400, Code: ErrInvalidRequest},
			httpx.KindInvalidClient:      {Status: 401, Code: ErrInvalidClient},
			httpx.KindInvalidCredentials: {Status: 400, Code: ErrInvalidGrant},
			httpx.KindInvalidGrant:       {Status: 400, Code: ErrInvalidGrant},
			httpx.KindInvalidScope:       {Status: 400, Code: ErrInvalidScope},
			httpx.KindUnauthorizedClient: {Status: 400, Code: ErrUnauthorizedClient},
			httpx.KindUnsupportedGrant:   {Status: 400, Code: ErrUnsupportedGrantType},
			httpx.KindInvalidDPoPProof:   {Status: 400, Code: ErrInvalidDPoPProof},
			httpx.KindUseDPoPNonce:       {Status: 400, Code: ErrUseDPoPNonce},
			// No OAuth route checks an access token or names a resource.
			httpx.KindNoToken:          internal,
			httpx.KindInvalidToken:     internal,
			httpx.KindForbidden:        internal,
			httpx.KindNotFound:         internal,
			httpx.KindMethodNotAllowed: internal,
		},
		Challenge: `Basic realm="gw", charset="UTF-8"`,
	})
}
