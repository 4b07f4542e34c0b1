package tokenservice

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/testkit/problemtest"
)

// TestProblemTable: every issuer error and every kind of problem, through
// the Token Service dialect: the envelope with the request's ver and txnId
// echoed and a fresh timestamp, its errorCode table, a Bearer challenge on
// every 401, Retry-After on every 429 and 503.
func TestProblemTable(t *testing.T) {
	unauthorized := problemtest.Answer{Status: 401, Code: CodeUnauthorized}
	unavailable := problemtest.Answer{Status: 503, Code: CodeUnavailable}
	internal := problemtest.Answer{Status: 500, Code: CodeServerError}
	problemtest.Run(t, problemtest.Dialect{
		Dialect: dialect{s: &Server{Realm: "gw", Log: zap.NewNop()}, req: &request{ver: "1.0.0", txn: "t-1"}},
		Decode: func(_ int, body []byte) (string, string, error) {
			var e errorResponse
			if err := problemtest.Strict(body, &e); err != nil {
				return "", "", err
			}
			if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil || e.Ver != "1.0.0" || e.TxnID != "t-1" {
				return "", "", fmt.Errorf("envelope not echoed: %+v", e)
			}
			return e.ErrorCode, e.ErrorMsg, nil
		},
		Table: map[httpx.Kind]problemtest.Answer{
			httpx.KindInternal:           internal,
			httpx.KindUnavailable:        unavailable,
			httpx.KindBusy:               unavailable,
			httpx.KindThrottled:          {Status: 429, Code: CodeTooMany},
			httpx.KindInvalidRequest:     {Status: 400, Code: CodeBadRequest},
			httpx.KindInvalidClient:      unauthorized,
			httpx.KindInvalidCredentials: unauthorized,
			httpx.KindNoToken:            unauthorized,
			httpx.KindInvalidToken:       unauthorized,
			httpx.KindInvalidDPoPProof:   unauthorized,
			httpx.KindUseDPoPNonce:       unauthorized,
			httpx.KindForbidden:          {Status: 403, Code: CodeForbidden},
			httpx.KindNotFound:           {Status: 404, Code: CodeNotFound},
			// No Token Service route refreshes, grants scopes or is
			// reached by the wrong method.
			httpx.KindInvalidGrant:       internal,
			httpx.KindInvalidScope:       internal,
			httpx.KindUnauthorizedClient: internal,
			httpx.KindUnsupportedGrant:   internal,
			httpx.KindMethodNotAllowed:   internal,
		},
		Challenge: `Bearer realm="gw"`,
	})
}
