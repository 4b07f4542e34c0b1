// Package login serves browser sign-in: the authorization endpoint (RFC
// 6749 §4.1 with PKCE, as OAuth 2.1 and RFC 9700 have it), the login and
// consent pages and the single sign-on session's cookie. Codes it issues
// are redeemed at /token (package oauth).
package login

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Paths this package serves.
const (
	PathAuthorize = "/authorize"
	PathLogin     = "/login"
	PathConsent   = "/consent"
	PathStyle     = "/login/static/style.css"
	PathFormPost  = "/login/static/formpost.js"
)

// maxState bounds the state echoed to the client.
const maxState = 2048

// pendingTTL is how long a login or consent page may wait for its answer.
const pendingTTL = 30 * time.Minute

// Server serves browser sign-in for one Issuer.
type Server struct {
	Issuer *issuer.Issuer
	Log    *zap.Logger
	Title  string // shown on the pages
	Pages  *Pages // from LoadPages; nil: the built-in pages
	// Secure says the site is HTTPS: cookies get Secure and the __Host-
	// prefix.
	Secure bool
}

// SessionCookieName is the cookie of the sign-in session.
func SessionCookieName(secure bool) string { return cookieName("tg_session", secure) }

func cookieName(base string, secure bool) string {
	if secure {
		return "__Host-" + base
	}
	return base
}

// Routes maps each path to its handler.
func (s *Server) Routes() map[string]httpx.Route {
	// Every method a browser may send is routed to the pages, which answer
	// a wrong one with a page (not the gateway's JSON). /authorize takes no
	// HEAD: a code is a side effect a HEAD must not have.
	both := []string{http.MethodGet, http.MethodHead, http.MethodPost}
	return map[string]httpx.Route{
		PathAuthorize: {Methods: both, Handler: s.only([]string{http.MethodGet, http.MethodPost}, "Open this page with GET or POST.", s.authorize)},
		PathLogin: {Methods: both, Handler: s.only(httpx.Post,
			"This page answers the sign-in form. Go back to the application and sign in from there.", s.login)},
		PathConsent: {Methods: both, Handler: s.only(httpx.Post,
			"This page answers the sign-in form. Go back to the application and sign in from there.", s.consent)},
		PathStyle:    {Methods: httpx.Get, Handler: s.asset("static/style.css", "text/css; charset=utf-8")},
		PathFormPost: {Methods: httpx.Get, Handler: s.asset("static/formpost.js", "text/javascript; charset=utf-8")},
	}
}

// only answers a method other than methods (a bookmarked form target, a
// HEAD of /authorize) with a 405 page saying msg.
func (s *Server) only(methods []string, msg string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			s.pageHeaders(w, "")
			w.Header().Set("Allow", strings.Join(methods, ", "))
			s.errorPage(w, http.StatusMethodNotAllowed, msg, 0)
			return
		}
		h(w, r)
	}
}

// authz is a validated authorization request, sealed into the pages'
// forms so that any instance continues it.
type authz struct {
	ID          string   `json:"id"` // binds the CSRF token to this request
	ClientID    string   `json:"c"`
	RedirectURI string   `json:"r"` // as sent ("" when the one registered was meant)
	Redirect    string   `json:"t"` // where the answer goes
	State       string   `json:"s,omitempty"`
	Challenge   string   `json:"pc,omitempty"`
	Scope       string   `json:"sc,omitempty"`
	Nonce       string   `json:"n,omitempty"`
	FormPost    bool     `json:"fp,omitempty"`
	Prompt      []string `json:"p,omitempty"`
	MaxAge      int64    `json:"ma"` // -1: none
	LoginHint   string   `json:"lh,omitempty"`
	// Session is the hash of the session a consent page was shown to:
	// the decision counts only for that session's user.
	Session string `json:"ss,omitempty"`
}

// oidcScopes may be asked of any client; other scopes must be the client's.
var oidcScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// authorize is the authorization endpoint (GET, or POST as a form).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	s.pageHeaders(w, "")
	params, err := requestParams(r)
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, err.Error(), 0)
		return
	}
	a, c, prob := s.parseAuthorize(r, params)
	switch {
	case prob != nil && a.Redirect == "": // unknown client or redirect URI: never redirected to
		s.errorPage(w, prob.status, prob.desc, 0)
		return
	case prob != nil:
		s.answerError(w, r, a, prob.code, prob.desc)
		return
	}
	sess, ok := s.currentSession(r)
	needLogin := !ok || slices.Contains(a.Prompt, "login") ||
		(a.MaxAge >= 0 && s.Issuer.Core().Now().Sub(sess.AuthTime) > time.Duration(a.MaxAge)*time.Second) || a.MaxAge == 0
	if needLogin {
		if slices.Contains(a.Prompt, "none") {
			s.answerError(w, r, a, "login_required", "the user is not signed in")
			return
		}
		s.loginPage(w, r, a, c, http.StatusOK, "", a.LoginHint)
		return
	}
	s.proceed(w, r, a, c, sess)
}

// refusal is a refused authorization request.
type refusal struct {
	status     int
	code, desc string
}

func refuse(code, desc string) *refusal {
	return &refusal{status: http.StatusBadRequest, code: code, desc: desc}
}

// parseAuthorize checks an authorization request. Until the client and
// its redirect URI are known, a refusal leaves a.Redirect empty: it is
// shown, never redirected.
func (s *Server) parseAuthorize(r *http.Request, p url.Values) (authz, issuer.Client, *refusal) {
	a := authz{ClientID: p.Get("client_id"), RedirectURI: p.Get("redirect_uri"), State: p.Get("state"), MaxAge: -1}
	if len(a.State) > maxState {
		a.State = "" // never echoed, not even in the refusal
		return a, issuer.Client{}, refuse("invalid_request", "state is too long")
	}
	if a.ClientID == "" {
		return a, issuer.Client{}, refuse("invalid_request", "client_id is required")
	}
	c, err := s.Issuer.LookupClient(r.Context(), a.ClientID)
	switch {
	case errors.Is(err, issuer.ErrNotFound):
		return a, c, refuse("invalid_request", "this application is not known here")
	case err != nil:
		s.Log.Error("looking up client", zap.String("client_id", a.ClientID), zap.Error(err))
		return a, c, &refusal{status: http.StatusServiceUnavailable, desc: "the sign-in service is unavailable; try again shortly"}
	}
	switch {
	case a.RedirectURI == "" && len(c.RedirectURIs) == 1:
		a.Redirect = c.RedirectURIs[0]
	case a.RedirectURI != "" && c.AllowsRedirect(a.RedirectURI):
		a.Redirect = a.RedirectURI
	default:
		return a, c, refuse("invalid_request", "the redirect_uri is not registered for this application")
	}
	// From here on, refusals go back to the client (RFC 6749 §4.1.2.1).
	switch p.Get("response_mode") {
	case "", "query":
	case "form_post":
		a.FormPost = true
	default:
		return a, c, refuse("invalid_request", "response_mode must be query or form_post")
	}
	switch {
	case p.Has("request"):
		return a, c, refuse("request_not_supported", "request objects are not supported")
	case p.Has("request_uri"):
		return a, c, refuse("request_uri_not_supported", "request_uri is not supported")
	case p.Get("response_type") == "":
		return a, c, refuse("invalid_request", "response_type is required")
	case p.Get("response_type") != "code":
		return a, c, refuse("unsupported_response_type", "response_type must be code")
	}
	a.Challenge = p.Get("code_challenge")
	method := p.Get("code_challenge_method")
	switch {
	case a.Challenge == "" && method != "":
		return a, c, refuse("invalid_request", "code_challenge_method without code_challenge")
	case a.Challenge == "" && (c.Public || !c.PKCEOptional):
		return a, c, refuse("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
	case a.Challenge != "" && method != "S256":
		return a, c, refuse("invalid_request", "code_challenge_method must be S256")
	case a.Challenge != "" && !issuer.ValidChallenge(a.Challenge):
		return a, c, refuse("invalid_request", "code_challenge is not an S256 challenge")
	}
	for sc := range strings.FieldsSeq(p.Get("scope")) {
		if !slices.Contains(oidcScopes, sc) && !slices.Contains(c.Scopes, sc) {
			return a, c, refuse("invalid_scope", "this application may not ask for scope "+strconv.Quote(sc))
		}
	}
	a.Scope, _ = issuer.GrantScope(p.Get("scope"), append(slices.Clone(oidcScopes), c.Scopes...))
	if p.Get("scope") == "" {
		a.Scope = ""
	}
	a.Prompt = strings.Fields(p.Get("prompt"))
	for _, pr := range a.Prompt {
		if pr != "none" && pr != "login" && pr != "consent" && pr != "select_account" {
			return a, c, refuse("invalid_request", "prompt must be none, login or consent")
		}
	}
	if slices.Contains(a.Prompt, "none") && len(a.Prompt) > 1 {
		return a, c, refuse("invalid_request", "prompt=none cannot be combined")
	}
	if v := p.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || len(v) > 9 || strings.Trim(v, "0123456789") != "" { // digits only; at most ~31 years, so no overflow
			return a, c, refuse("invalid_request", "max_age must be a number of seconds")
		}
		a.MaxAge = n
	}
	a.Nonce, a.LoginHint = p.Get("nonce"), p.Get("login_hint")
	if len(a.Nonce) > 512 || len(a.LoginHint) > 256 {
		return a, c, refuse("invalid_request", "a parameter is too long")
	}
	id := make([]byte, 18)
	if _, err := rand.Read(id); err != nil {
		return a, c, &refusal{status: http.StatusInternalServerError, code: "server_error", desc: "the server could not start the sign-in"}
	}
	a.ID = base64.RawURLEncoding.EncodeToString(id)
	return a, c, nil
}

// requestParams are the query (GET) or form (POST) parameters; a repeated
// one is refused (RFC 6749 §3.1).
func requestParams(r *http.Request) (url.Values, error) {
	var p url.Values
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(nil, r.Body, httpx.MaxBody)
		if err := r.ParseForm(); err != nil {
			return nil, errors.New("the request could not be read")
		}
		p = r.PostForm
	} else {
		var err error
		if p, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return nil, errors.New("the request's query is malformed")
		}
	}
	for k, v := range p {
		if len(v) > 1 {
			return nil, errors.New("parameter " + strconv.Quote(k) + " is repeated")
		}
	}
	return p, nil
}

// currentSession is the live sign-in session the request's cookie names.
func (s *Server) currentSession(r *http.Request) (issuer.Session, bool) {
	ck, err := r.Cookie(SessionCookieName(s.Secure))
	if err != nil {
		return issuer.Session{}, false
	}
	sess, err := s.Issuer.LookupSession(r.Context(), ck.Value)
	if err != nil {
		if !errors.Is(err, issuer.ErrNotFound) {
			s.Log.Error("reading session", zap.Error(err))
		}
		return issuer.Session{}, false
	}
	return sess, true
}

// proceed continues a request for a signed-in user: consent if asked,
// else the code.
func (s *Server) proceed(w http.ResponseWriter, r *http.Request, a authz, c issuer.Client, sess issuer.Session) {
	if _, err := s.Issuer.SessionPrincipal(r.Context(), sess); err != nil { // the user is gone or changed
		if slices.Contains(a.Prompt, "none") {
			s.answerError(w, r, a, "login_required", "the user is not signed in")
			return
		}
		s.loginPage(w, r, a, c, http.StatusOK, "", a.LoginHint)
		return
	}
	if c.Consent || slices.Contains(a.Prompt, "consent") {
		ok, err := s.Issuer.HasConsent(r.Context(), sess.Subject, c.ID, strings.Fields(a.Scope))
		if err != nil {
			s.serverError(w, err)
			return
		}
		if !ok || slices.Contains(a.Prompt, "consent") {
			if slices.Contains(a.Prompt, "none") {
				s.answerError(w, r, a, "consent_required", "the user has not allowed this application")
				return
			}
			s.consentPage(w, r, a, c, sess)
			return
		}
	}
	code, err := s.Issuer.IssueCode(r.Context(), issuer.CodeRequest{Client: c, RedirectURI: a.RedirectURI,
		Challenge: a.Challenge, Scope: a.Scope, Nonce: a.Nonce, Session: sess})
	if err != nil {
		s.serverError(w, err)
		return
	}
	s.answer(w, r, a, url.Values{"code": {code}})
}

// answerError sends an authorization error back to the client.
func (s *Server) answerError(w http.ResponseWriter, r *http.Request, a authz, code, desc string) {
	s.answer(w, r, a, url.Values{"error": {code}, "error_description": {desc}})
}

// answer sends an authorization response, with state and iss (RFC 9207),
// to the client's redirect URI: in its query or, for form_post, in a form
// the browser posts there.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, a authz, v url.Values) {
	if a.State != "" {
		v.Set("state", a.State)
	}
	v.Set("iss", s.Issuer.Identifier())
	if a.FormPost {
		var fields []field
		for _, k := range []string{"code", "error", "error_description", "state", "iss"} {
			if v.Has(k) {
				fields = append(fields, field{k, v.Get(k)})
			}
		}
		s.pageHeaders(w, a.Redirect)
		s.render(w, http.StatusOK, "formpost.html", page{Heading: "Continue", Target: a.Redirect, Fields: fields})
		return
	}
	target := a.Redirect
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	http.Redirect(w, r, target+sep+v.Encode(), http.StatusSeeOther)
}

// Pages whose form carries a sealed request; a CSRF token is bound to
// one, so that a form is taken only by its own page's route (a login
// form posted to /consent would skip the sign-in prompt=login or max_age
// asked for).
const (
	formLogin   = "login"
	formConsent = "consent"
)

// seal puts a into the form of page, with its CSRF token.
func (s *Server) seal(w http.ResponseWriter, r *http.Request, a authz, page string) (sealed, csrf string, err error) {
	b, err := json.Marshal(a)
	if err != nil {
		return "", "", err
	}
	if sealed, err = s.Issuer.SealState("authorize", b, pendingTTL); err != nil {
		return "", "", err
	}
	return sealed, s.Issuer.StateMAC("csrf", s.csrfCookie(w, r), a.ID, page), nil
}

// unseal opens the pending request of a form posted from page and checks
// its CSRF token against the browser's cookie (this stops login CSRF too:
// another site cannot read or set the cookie).
func (s *Server) unseal(r *http.Request, page string) (authz, bool) {
	var a authz
	b, err := s.Issuer.OpenState("authorize", r.PostForm.Get("authz"))
	if err != nil || json.Unmarshal(b, &a) != nil {
		return authz{}, false
	}
	ck, err := r.Cookie(cookieName("tg_csrf", s.Secure))
	if err != nil || ck.Value == "" {
		return authz{}, false
	}
	want := s.Issuer.StateMAC("csrf", ck.Value, a.ID, page)
	return a, hmac.Equal([]byte(want), []byte(r.PostForm.Get("csrf")))
}

// csrfCookie returns the browser's CSRF cookie, setting a new one if it
// has none.
func (s *Server) csrfCookie(w http.ResponseWriter, r *http.Request) string {
	name := cookieName("tg_csrf", s.Secure)
	if ck, err := r.Cookie(name); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: "/", HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteLaxMode})
	return v
}

// postedForm reads the form of page, or answers the problem.
func (s *Server) postedForm(w http.ResponseWriter, r *http.Request, page string) (authz, issuer.Client, bool) {
	s.pageHeaders(w, "")
	r.Body = http.MaxBytesReader(w, r.Body, httpx.MaxBody)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "the form could not be read", 0)
		return authz{}, issuer.Client{}, false
	}
	a, ok := s.unseal(r, page)
	if !ok {
		s.errorPage(w, http.StatusForbidden, "This form has expired or did not come from this site. Go back to the application and sign in again.", 0)
		return authz{}, issuer.Client{}, false
	}
	c, err := s.Issuer.LookupClient(r.Context(), a.ClientID)
	if err != nil || !c.AllowsRedirect(a.Redirect) { // the client may have changed meanwhile
		s.errorPage(w, http.StatusBadRequest, "this application is not known here", 0)
		return authz{}, issuer.Client{}, false
	}
	return a, c, true
}

// login checks the login form.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	a, c, ok := s.postedForm(w, r, formLogin)
	if !ok {
		return
	}
	username := r.PostForm.Get("username")
	p, err := s.Issuer.SignIn(r.Context(), username, r.PostForm.Get("password"))
	if err != nil {
		prob := httpx.SignInProblem(err, httpx.New(httpx.KindInvalidCredentials, "Incorrect username or password."),
			"the server could not check the password")
		switch prob.Kind {
		case httpx.KindInvalidCredentials:
			s.loginPage(w, r, a, c, http.StatusOK, prob.Description, username)
		case httpx.KindThrottled, httpx.KindBusy, httpx.KindUnavailable:
			secs := issuer.RetryAfterSeconds(prob.RetryAfter)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			msg := "Too many failed sign-ins."
			if prob.Kind != httpx.KindThrottled {
				msg = "The sign-in service is busy."
			}
			s.errorPage(w, prob.Status, msg, secs)
		default:
			s.serverError(w, err)
		}
		return
	}
	if old, err := r.Cookie(SessionCookieName(s.Secure)); err == nil {
		_ = s.Issuer.EndSession(r.Context(), old.Value) // a new id at every sign-in
	}
	id, sess, err := s.Issuer.StartSession(r.Context(), p, []string{"pwd"})
	if err != nil {
		s.serverError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookieName(s.Secure), Value: id, Path: "/", HttpOnly: true, Secure: s.Secure,
		SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt})
	a.Prompt = slices.DeleteFunc(a.Prompt, func(p string) bool { return p == "login" })
	a.MaxAge = -1 // just signed in
	s.proceed(w, r, a, c, sess)
}

// consent takes the consent page's decision.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	a, c, ok := s.postedForm(w, r, formConsent)
	if !ok {
		return
	}
	sess, ok := s.currentSession(r)
	if !ok {
		s.loginPage(w, r, a, c, http.StatusOK, "", "")
		return
	}
	if subtle.ConstantTimeCompare([]byte(a.Session), []byte(sess.Hash)) != 1 {
		// Another user signed in since the page was shown (another tab):
		// ask that user.
		s.consentPage(w, r, a, c, sess)
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		s.answerError(w, r, a, "access_denied", "the user denied the request")
		return
	}
	if err := s.Issuer.GrantConsent(r.Context(), sess.Subject, c.ID, strings.Fields(a.Scope)); err != nil {
		s.serverError(w, err)
		return
	}
	a.Prompt = slices.DeleteFunc(a.Prompt, func(p string) bool { return p == "consent" })
	s.proceed(w, r, a, c, sess)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, a authz, c issuer.Client, status int, msg, username string) {
	sealed, csrf, err := s.seal(w, r, a, formLogin)
	if err != nil {
		s.serverError(w, err)
		return
	}
	// The form's answer may be a redirect to the client, which browsers
	// hold to the page's form-action too.
	s.pageHeaders(w, a.Redirect)
	s.render(w, status, "login.html", page{Heading: "Sign in", Client: c.ID, Authz: sealed, CSRF: csrf, Username: username, Error: msg})
}

func (s *Server) consentPage(w http.ResponseWriter, r *http.Request, a authz, c issuer.Client, sess issuer.Session) {
	a.Session = sess.Hash
	sealed, csrf, err := s.seal(w, r, a, formConsent)
	if err != nil {
		s.serverError(w, err)
		return
	}
	s.pageHeaders(w, a.Redirect) // as on the login page
	s.render(w, http.StatusOK, "consent.html", page{Heading: "Allow access?", Client: c.ID, Authz: sealed, CSRF: csrf,
		Scopes: strings.Fields(a.Scope), Username: sess.Principal})
}

func (s *Server) errorPage(w http.ResponseWriter, status int, msg string, retryAfter int64) {
	s.render(w, status, "error.html", page{Heading: "Cannot sign in", Error: msg, RetryAfter: retryAfter})
}

// serverError answers an error of the server's own: 503 when the store is
// down, else 500; the cause goes to the log only.
func (s *Server) serverError(w http.ResponseWriter, err error) {
	prob := httpx.Failure(err, "the sign-in failed")
	s.Log.Error("browser sign-in", zap.Int("status", prob.Status), zap.Error(err))
	if prob.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.FormatInt(issuer.RetryAfterSeconds(prob.RetryAfter), 10))
		s.errorPage(w, prob.Status, "The sign-in service is unavailable.", issuer.RetryAfterSeconds(prob.RetryAfter))
		return
	}
	s.errorPage(w, prob.Status, "Something went wrong on our side. Try again.", 0)
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	pages := s.Pages
	if pages == nil {
		pages = builtin
	}
	if p.Title == "" {
		p.Title = s.Title
	}
	if p.Title == "" {
		p.Title = "Sign in"
	}
	var buf bytes.Buffer
	if err := pages.t.ExecuteTemplate(&buf, name, p); err != nil {
		s.Log.Error("rendering page", zap.String("page", name), zap.Error(err))
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("<!doctype html><title>Error</title><p>The page could not be shown.</p>")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// builtin are the embedded pages, checked by the package's tests.
var builtin = func() *Pages {
	p, err := LoadPages("")
	if err != nil {
		panic(err)
	}
	return p
}()

// pageHeaders are every page's: not cached, not framed, no inline script,
// no referrer; formTarget is where a form_post page's form may go.
func (s *Server) pageHeaders(w http.ResponseWriter, formTarget string) {
	h := w.Header()
	formAction := "'self'"
	if u, err := url.Parse(formTarget); err == nil && formTarget != "" {
		host := u.Host
		if strings.HasPrefix(host, "[") {
			// A CSP source cannot name an IPv6 literal (browsers drop
			// such a source, and with it the redirect to a native app's
			// [::1] listener): any host on that port.
			host = "*"
			if p := u.Port(); p != "" {
				host += ":" + p
			}
		}
		formAction += " " + u.Scheme + "://" + host
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; form-action "+
		formAction+"; frame-ancestors 'none'; base-uri 'none'")
}

func (s *Server) asset(name, ctype string) http.HandlerFunc {
	b, err := fs.ReadFile(static, name)
	if err != nil {
		panic(err)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(b)
	}
}
