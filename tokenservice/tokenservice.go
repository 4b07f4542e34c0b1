// Package tokenservice serves the Token Service routes (seed
// 003_e9923ec56022b509): user tokens, entity secrets that an administrator
// reads and resets, and entity tokens traded for an id and secret.
//
// Every response, errors included, echoes the request's `ver` and `txnId`
// with a fresh ISO-8601 `timestamp`. Errors use one envelope:
//
//	{"ver": "1.0.0", "timestamp": "…", "txnId": "…", "errorCode": "NOT_FOUND", "errorMsg": "…"}
package tokenservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/gateway/tokenauth"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Route paths.
const (
	PathUserToken   = "/user/token/generate"
	PathSecretRead  = "/entity/secret/read"
	PathSecretReset = "/entity/secret/reset"
	PathEntityToken = "/entity/token/generate"
)

// Error codes of the envelope.
const (
	CodeBadRequest   = "BAD_REQUEST"
	CodeUnauthorized = "UNAUTHORIZED"
	CodeForbidden    = "FORBIDDEN"
	CodeNotFound     = "NOT_FOUND"
	CodeServerError  = "SERVER_ERROR"
	CodeTooMany      = "TOO_MANY_REQUESTS" // 429: too many failed sign-ins, see Retry-After
	// CodeUnavailable answers 503 (with Retry-After) when too many
	// sign-ins are being checked or the store cannot be reached.
	CodeUnavailable = "SERVICE_UNAVAILABLE"
)

// code is the envelope's code table: each kind of problem's errorCode and
// status. A kind no Token Service route produces answers as a failure of
// the server.
func code(p *httpx.Problem) (string, int) {
	switch p.Kind {
	case httpx.KindInvalidRequest:
		return CodeBadRequest, p.Status // 400, or 413 for a body too large
	case httpx.KindInvalidCredentials, httpx.KindInvalidClient, // wrong id or secret
		httpx.KindNoToken, httpx.KindInvalidToken, httpx.KindInvalidDPoPProof, httpx.KindUseDPoPNonce: // refused admin token
		return CodeUnauthorized, http.StatusUnauthorized
	case httpx.KindForbidden:
		return CodeForbidden, http.StatusForbidden
	case httpx.KindNotFound:
		return CodeNotFound, http.StatusNotFound
	case httpx.KindThrottled:
		return CodeTooMany, http.StatusTooManyRequests
	case httpx.KindBusy, httpx.KindUnavailable:
		return CodeUnavailable, http.StatusServiceUnavailable
	}
	return CodeServerError, http.StatusInternalServerError
}

// dialect words problems in the envelope, echoing the request's ver and
// txnId (req is nil when the body could not be read). A refused access
// token is challenged as the token check says; any other 401 with Bearer,
// the scheme the secret routes take.
type dialect struct {
	s   *Server
	req *request
}

func (d dialect) echo() (ver, txn string) {
	if d.req == nil {
		return "", ""
	}
	return d.req.ver, d.req.txn
}

// Interface guards.
var (
	_ httpx.Dialect       = dialect{}
	_ httpx.Challenger    = dialect{}
	_ httpx.ProblemLogger = dialect{}
)

func (d dialect) Answer(_ *http.Request, p *httpx.Problem) (int, any) {
	c, status := code(p)
	ver, txn := d.echo()
	return status, errorResponse{envelope: stamp(ver, txn), ErrorCode: c, ErrorMsg: p.Description}
}

func (d dialect) Challenge(h http.Header, status int, p *httpx.Problem) {
	var rf *tokenauth.Refusal
	switch {
	case errors.As(p.Err, &rf):
		d.s.Tokens.Challenge(h, rf)
	case status == http.StatusUnauthorized:
		httpx.Challenge(h, "Bearer", d.s.Realm)
	}
}

func (d dialect) LogProblem(r *http.Request, status int, p *httpx.Problem) {
	c, _ := code(p)
	_, txn := d.echo()
	httpx.LogProblem(d.s.Log, "token service refused", r, status, p,
		zap.String("route", r.URL.Path), zap.String("error", c), zap.String("txn_id", txn))
}

// Server serves the Token Service routes for one Issuer.
type Server struct {
	Issuer *issuer.Issuer
	Log    *zap.Logger
	// Realm of the WWW-Authenticate challenges; "" is httpx.Realm.
	Realm string
	// Tokens checks the administrator's access token (Bearer, or DPoP
	// with a proof), as the guard does.
	Tokens *tokenauth.Checker
	// AdminRoles may read and reset entity secrets (any one of them),
	// held by a principal of one of AdminKinds.
	AdminRoles []string
	// AdminKinds are the principal kinds (issuer.KindUser, KindClient,
	// KindEntity, or "table:<name>") whose AdminRoles count; a token of
	// another kind never manages secrets, whatever its roles.
	AdminKinds []issuer.PrincipalKind
	// SecretTTL is the default lifetime of a new secret; MaxSecretTTL caps
	// what secretExpiryDays may ask for.
	SecretTTL, MaxSecretTTL time.Duration
}

// Routes maps each path to its handler and method.
func (s *Server) Routes() map[string]httpx.Route {
	return map[string]httpx.Route{
		PathUserToken:   {Methods: httpx.Post, Handler: s.userToken},
		PathSecretRead:  {Methods: httpx.Post, Handler: func(w http.ResponseWriter, r *http.Request) { s.secret(w, r, false) }},
		PathSecretReset: {Methods: httpx.Post, Handler: func(w http.ResponseWriter, r *http.Request) { s.secret(w, r, true) }},
		PathEntityToken: {Methods: httpx.Post, Handler: s.entityToken},
	}
}

// envelope is the echo every response carries.
type envelope struct {
	Ver       string `json:"ver,omitempty"`
	Timestamp string `json:"timestamp"`
	TxnID     string `json:"txnId,omitempty"`
}

func stamp(ver, txn string) envelope {
	return envelope{Ver: ver, TxnID: txn, Timestamp: isoTime(time.Now())}
}

// isoTime formats t as ISO 8601 in UTC with milliseconds, as the seed does.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

type errorResponse struct {
	envelope
	ErrorCode string `json:"errorCode"`
	ErrorMsg  string `json:"errorMsg"`
}

// request is a parsed JSON body whose fields are type-checked on access.
type request struct {
	fields   map[string]json.RawMessage
	ver, txn string
}

// parse reads the JSON body. ver and txnId are picked up first so even a
// request with other bad fields gets them echoed.
func parse(w http.ResponseWriter, r *http.Request, envelopeRequired bool) (*request, *httpx.Problem) {
	req := &request{}
	if err := httpx.DecodeJSON(w, r, &req.fields); err != nil {
		return nil, httpx.Classify(err)
	}
	req.ver, _ = req.optString("ver")
	req.txn, _ = req.optString("txnId")
	for _, f := range []string{"ver", "txnId"} {
		if _, err := req.optString(f); err != nil {
			return req, httpx.BadRequest("%v", err)
		}
	}
	if envelopeRequired {
		for _, f := range []string{"ver", "timestamp", "txnId"} {
			if _, err := req.str(f); err != nil {
				return req, httpx.BadRequest("%v", err)
			}
		}
	}
	if ts, _ := req.optString("timestamp"); ts != "" {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			return req, httpx.BadRequest("timestamp must be an ISO 8601 date-time")
		}
	}
	return req, nil
}

// optString returns a string field, "" if absent; an error if not a string.
func (q *request) optString(name string) (string, error) {
	raw, ok := q.fields[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("%s must be a string", name)
	}
	return v, nil
}

// str returns a required, non-empty string field.
func (q *request) str(name string) (string, error) {
	v, err := q.optString(name)
	if err == nil && v == "" {
		err = fmt.Errorf("%s is required", name)
	}
	return v, err
}

// expiryDays reads secretExpiryDays: absent, or a positive integer.
func (q *request) expiryDays() (int64, bool, error) {
	raw, ok := q.fields["secretExpiryDays"]
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	var n json.Number
	// json.Number would also take "10" quoted; the seed says integer.
	if c := raw[0]; (c < '0' || c > '9') && c != '-' || json.Unmarshal(raw, &n) != nil {
		return 0, false, errors.New("secretExpiryDays must be an integer")
	}
	days, err := n.Int64()
	if err != nil {
		return 0, false, errors.New("secretExpiryDays must be an integer")
	}
	if days <= 0 {
		return 0, false, errors.New("secretExpiryDays must be positive")
	}
	return days, true, nil
}

type tokenResponse struct {
	envelope
	AccessToken string `json:"accessToken"`
	ExpiresIn   int64  `json:"expiresIn"`
	TokenType   string `json:"tokenType"`
}

func (s *Server) userToken(w http.ResponseWriter, r *http.Request) {
	s.credentialsToken(w, r, "username", "password", "invalid username or password",
		func(ctx context.Context, name, pw string) (issuer.Principal, error) {
			u, err := s.Issuer.AuthenticateUser(ctx, name, pw)
			return issuer.UserPrincipal(u), err
		})
}

func (s *Server) entityToken(w http.ResponseWriter, r *http.Request) {
	s.credentialsToken(w, r, "id", "secret", "invalid entity id or secret, or the secret has expired",
		func(ctx context.Context, id, secret string) (issuer.Principal, error) {
			e, err := s.Issuer.AuthenticateEntity(ctx, id, secret)
			return issuer.EntityPrincipal(e), err
		})
}

// credentialsToken trades the body's name and secret fields for a token.
func (s *Server) credentialsToken(w http.ResponseWriter, r *http.Request, nameField, secretField, refusal string,
	authenticate func(ctx context.Context, name, secret string) (issuer.Principal, error)) {
	req, prob := parse(w, r, false)
	if prob != nil {
		httpx.WriteProblem(w, r, dialect{s, req}, prob)
		return
	}
	name, err1 := req.str(nameField)
	secret, err2 := req.str(secretField)
	if err := errors.Join(err1, err2); err != nil {
		httpx.WriteProblem(w, r, dialect{s, req}, httpx.BadRequest("%v", strings.ReplaceAll(err.Error(), "\n", "; ")))
		return
	}
	p, err := authenticate(r.Context(), name, secret)
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s, req}, httpx.SignInProblem(err, httpx.New(httpx.KindInvalidCredentials, refusal),
			"the server could not check the credentials"))
		return
	}
	s.issue(w, r, req, p)
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request, req *request, p issuer.Principal) {
	toks, err := s.Issuer.Issue(r.Context(), issuer.Grant{Principal: p, Scope: strings.Join(p.Scopes, " ")})
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s, req}, httpx.Failure(err, "the server could not issue a token"))
		return
	}
	s.Log.Info("token issued", zap.String("grant", "token_service_"+string(p.Kind)), zap.String("sub", p.Subject),
		zap.String("jti", toks.Claims.ID), zap.String("txn_id", req.txn))
	httpx.WriteJSON(w, http.StatusOK, tokenResponse{envelope: stamp(req.ver, req.txn), AccessToken: toks.AccessToken,
		ExpiresIn: toks.ExpiresIn, TokenType: "Bearer"})
}

type secretResponse struct {
	envelope
	EntityID       string `json:"entityId"`
	Secret         string `json:"secret"`
	ExpiresOn      int64  `json:"expiresOn"`
	ExpirationDate string `json:"expirationDate"`
}

// secret serves read (reset false) and reset.
func (s *Server) secret(w http.ResponseWriter, r *http.Request, reset bool) {
	// The token is checked first; the body is still parsed so that even a
	// refusal echoes ver and txnId.
	claims, prob := s.admin(r)
	req, pe := parse(w, r, true)
	if prob == nil {
		prob = pe
	}
	if prob != nil {
		httpx.WriteProblem(w, r, dialect{s, req}, prob)
		return
	}
	entityID, err := req.str("entityId")
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s, req}, httpx.BadRequest("%v", err))
		return
	}
	ttl := s.SecretTTL
	days, set, err := req.expiryDays()
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s, req}, httpx.BadRequest("%v", err))
		return
	}
	if set {
		maxDays := int64(s.MaxSecretTTL / (24 * time.Hour))
		if days > maxDays {
			httpx.WriteProblem(w, r, dialect{s, req}, httpx.BadRequest("secretExpiryDays must be at most %d", maxDays))
			return
		}
		ttl = time.Duration(days) * 24 * time.Hour
	}
	var info issuer.SecretInfo
	if reset {
		info, err = s.Issuer.ResetSecret(r.Context(), entityID, ttl)
	} else {
		info, err = s.Issuer.ReadSecret(r.Context(), entityID, ttl)
	}
	if err != nil {
		prob := httpx.Classify(err).Or("the server could not provide the secret")
		if prob.Kind == httpx.KindNotFound {
			prob.Description = "no entity " + entityID
		}
		httpx.WriteProblem(w, r, dialect{s, req}, prob)
		return
	}
	action := "read"
	if reset {
		action = "reset"
	}
	s.Log.Info("entity secret "+action, zap.String("entity", entityID), zap.String("by", claims.Subject),
		zap.Time("expires", info.ExpiresAt), zap.String("txn_id", req.txn))
	httpx.WriteJSON(w, http.StatusOK, secretResponse{envelope: stamp(req.ver, req.txn), EntityID: info.EntityID,
		Secret: info.Secret, ExpiresOn: info.ExpiresAt.Unix(), ExpirationDate: isoTime(info.ExpiresAt)})
}

// admin checks the caller's access token, its principal kind and admin role.
func (s *Server) admin(r *http.Request) (*issuer.AccessClaims, *httpx.Problem) {
	// Roles count only on the principal kinds configured for it (AdminKinds):
	// a role called admin in an application's user table, on a client or on
	// an entity grants nothing here by default.
	claims, rf := s.Tokens.WithRole(r, s.AdminRoles, s.AdminKinds)
	if rf == nil {
		return claims, nil
	}
	p := rf.Problem()
	switch {
	case rf.NoToken():
		p.Description = "a user bearer token is required"
	case errors.Is(rf, tokenauth.ErrLacksRole):
		p.Description = "the token's principal may not manage entity secrets"
	}
	return nil, p
}
