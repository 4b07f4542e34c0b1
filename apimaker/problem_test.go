package apimaker

import (
	"fmt"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/testkit/problemtest"
)

// TestProblemTable: every issuer error and every kind of problem, through
// the API Maker dialect: {success: false, statusCode, message} whose
// statusCode is the status (the code the table checks), a Bearer challenge
// on every 401, Retry-After on every 429 and 503.
func TestProblemTable(t *testing.T) {
	table := map[httpx.Kind]problemtest.Answer{}
	for _, k := range problemtest.Kinds() { // the envelope's code is the kind's status
		table[k] = problemtest.Answer{Status: k.Status(), Code: strconv.Itoa(k.Status())}
	}
	problemtest.Run(t, problemtest.Dialect{
		Dialect: dialect{s: &Server{Realm: "gw", Log: zap.NewNop()}},
		Decode: func(status int, body []byte) (string, string, error) {
			var e response
			if err := problemtest.Strict(body, &e); err != nil {
				return "", "", err
			}
			if e.Success || e.Data != nil || e.StatusCode != status {
				return "", "", fmt.Errorf("not a refusal of status %d: %+v", status, e)
			}
			return strconv.Itoa(e.StatusCode), e.Message, nil
		},
		Table:     table,
		Challenge: `Bearer realm="gw"`,
	})
}
