package eventhos

import (
	"errors"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/testkit/problemtest"
)

// TestProblemTable: every issuer error and every kind of problem, through
// the Eventhos dialect: {code, message} with the seed's result codes (an
// answer has no content), no 401 at all (wrong credentials are 400001),
// Retry-After on every 429 and 503, and every failure of the server "Not
// categorized error".
func TestProblemTable(t *testing.T) {
	code := func(status, c int) problemtest.Answer {
		return problemtest.Answer{Status: status, Code: strconv.Itoa(c)}
	}
	internal := problemtest.Answer{Status: 500, Code: strconv.Itoa(CodeUncategorized), Message: "Not categorized error"}
	problemtest.Run(t, problemtest.Dialect{
		Dialect: dialect{s: &Server{Log: zap.NewNop()}},
		Decode: func(_ int, body []byte) (string, string, error) {
			var e envelope
			err := problemtest.Strict(body, &e)
			if err == nil && e.Content != nil {
				err = errors.New("an error answer has no content")
			}
			return strconv.Itoa(e.Code), e.Message, err
		},
		Table: map[httpx.Kind]problemtest.Answer{
			httpx.KindInternal:           internal,
			httpx.KindUnavailable:        code(503, CodeUncategorized),
			httpx.KindBusy:               code(503, CodeUncategorized),
			httpx.KindThrottled:          code(429, CodeUncategorized),
			httpx.KindInvalidRequest:     code(400, CodeUncategorized),
			httpx.KindUnsupportedGrant:   code(400, CodeUncategorized),
			httpx.KindNotFound:           code(400, CodeNotFound),
			httpx.KindInvalidClient:      code(400, CodeWrongSecret),
			httpx.KindInvalidCredentials: code(400, CodeWrongSecret),
			httpx.KindUnauthorizedClient: code(400, CodeNotAllowed),
			// Eventhos refreshes nothing and takes no access token.
			httpx.KindInvalidGrant:     internal,
			httpx.KindInvalidScope:     internal,
			httpx.KindNoToken:          internal,
			httpx.KindInvalidToken:     internal,
			httpx.KindInvalidDPoPProof: internal,
			httpx.KindUseDPoPNonce:     internal,
			httpx.KindForbidden:        internal,
			httpx.KindMethodNotAllowed: internal,
		},
	})
}
