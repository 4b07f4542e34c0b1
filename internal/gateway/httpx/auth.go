package httpx

import (
	"errors"
	"net/http"
)

// ClientFrom says where a route takes client credentials from.
type ClientFrom int

// The places client credentials may come from (RFC 6749 §2.3.1).
const (
	FromBasic ClientFrom = 1 << iota // HTTP Basic (client_secret_basic)
	FromBody                         // client_id and client_secret parameters (client_secret_post)
)

// ClientCreds is how a request identified its client.
type ClientCreds struct {
	ID, Secret string
	// Basic is set when the credentials came in an HTTP Basic header, even
	// an empty one (some libraries send one for a public client).
	Basic bool
	// Present is set when a client_id or secret was sent at all.
	Present bool
}

// ClientCredentials is the one reader of client credentials for every
// route. It reads them from the places from allows: Basic, body (params),
// or both. With both allowed, a secret in the body next to a Basic header,
// or a body client_id that differs from the Basic one, is a 400 (RFC 6749
// §2.3: one method per request); a malformed Basic header is a 401 and a
// repeated Authorization header a 400. Each route words the *Problem in its
// own envelope.
func ClientCredentials(r *http.Request, params map[string]string, from ClientFrom) (ClientCreds, error) {
	var bodyID, bodySecret string
	if from&FromBody != 0 {
		bodyID, bodySecret = params["client_id"], params["client_secret"]
	}
	body := ClientCreds{ID: bodyID, Secret: bodySecret, Present: bodyID != "" || bodySecret != ""}
	if from&FromBasic == 0 {
		return body, nil
	}
	id, secret, err := BasicAuth(r)
	switch {
	case errors.Is(err, ErrNoCredentials):
		return body, nil
	case err != nil:
		return ClientCreds{}, err
	case bodySecret != "":
		return ClientCreds{}, BadRequest("client credentials sent both in the Authorization header and in the body")
	case bodyID != "" && bodyID != id:
		return ClientCreds{}, BadRequest("client_id in the body differs from the Authorization header")
	}
	return ClientCreds{ID: id, Secret: secret, Basic: true, Present: id != "" || secret != ""}, nil
}
