package httpx_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
)

func basicHdr(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestClientCredentials(t *testing.T) {
	both := httpx.FromBasic | httpx.FromBody
	body := map[string]string{"client_id": "web", "client_secret": "s"}
	for _, tc := range []struct {
		name   string
		auth   []string
		params map[string]string
		from   httpx.ClientFrom
		want   httpx.ClientCreds
		status int // 0: no error
	}{
		{"none", nil, nil, both, httpx.ClientCreds{}, 0},
		{"body", nil, body, both, httpx.ClientCreds{ID: "web", Secret: "s", Present: true}, 0},
		{"body id only (public client)", nil, map[string]string{"client_id": "web"}, both, httpx.ClientCreds{ID: "web", Present: true}, 0},
		{"basic", []string{basicHdr("web", "s")}, nil, both, httpx.ClientCreds{ID: "web", Secret: "s", Basic: true, Present: true}, 0},
		{"basic is form-decoded", []string{basicHdr("a%3Ab", "x+y")}, nil, both, httpx.ClientCreds{ID: "a:b", Secret: "x y", Basic: true, Present: true}, 0},
		{"empty basic", []string{basicHdr("", "")}, nil, both, httpx.ClientCreds{Basic: true}, 0},
		{"basic and the same body id", []string{basicHdr("web", "s")}, map[string]string{"client_id": "web"}, both, httpx.ClientCreds{ID: "web", Secret: "s", Basic: true, Present: true}, 0},
		{"basic and a body secret", []string{basicHdr("web", "s")}, body, both, httpx.ClientCreds{}, 400},
		{"basic and another body id", []string{basicHdr("web", "s")}, map[string]string{"client_id": "app"}, both, httpx.ClientCreds{}, 400},
		{"malformed basic", []string{"Basic !!!"}, nil, both, httpx.ClientCreds{}, 401},
		{"basic without colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("web"))}, nil, both, httpx.ClientCreds{}, 401},
		{"repeated authorization", []string{basicHdr("a", "b"), basicHdr("a", "b")}, nil, both, httpx.ClientCreds{}, 400},
		{"bearer is not client auth", []string{"Bearer x"}, body, both, httpx.ClientCreds{ID: "web", Secret: "s", Present: true}, 0},
		{"basic only ignores the body", nil, body, httpx.FromBasic, httpx.ClientCreds{}, 0},
		{"basic only, both sent", []string{basicHdr("web", "s")}, body, httpx.FromBasic, httpx.ClientCreds{ID: "web", Secret: "s", Basic: true, Present: true}, 0},
		{"body only ignores basic", []string{"Basic !!!"}, body, httpx.FromBody, httpx.ClientCreds{ID: "web", Secret: "s", Present: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/token", nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			got, err := httpx.ClientCredentials(r, tc.params, tc.from)
			if tc.status != 0 {
				if err == nil || httpx.Status(err) != tc.status {
					t.Fatalf("err %v (status %d), want status %d", err, httpx.Status(err), tc.status)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
