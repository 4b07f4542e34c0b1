// Package httpx holds the request parsing and response writing that every
// tokengate route shares: strict bodies, credentials from headers, JSON
// out, and the one problem type (Problem) that every refusal and failure
// is, classified once from issuer's errors (Classify) and written once
// (WriteProblem) in each route's dialect.
package httpx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Realm is the realm of every WWW-Authenticate challenge tokengate sends
// (a site's guard may set its own with the realm option).
const Realm = "tokengate"

// Route is one endpoint: the methods it answers and its handler.
type Route struct {
	Methods []string
	Handler http.HandlerFunc
}

// Post and Get are the usual method lists; GET routes answer HEAD too.
var (
	Post = []string{http.MethodPost}
	Get  = []string{http.MethodGet, http.MethodHead}
)

// MaxBody is the largest request body a token route reads.
const MaxBody = 64 << 10

// ReadBody reads the whole body, up to MaxBody, refusing invalid UTF-8.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &Problem{Kind: KindInvalidRequest, Status: http.StatusRequestEntityTooLarge,
			Description: fmt.Sprintf("request body is larger than %d bytes", MaxBody)}
	}
	if err != nil {
		return nil, BadRequest("reading request body: %v", err)
	}
	if !utf8.Valid(body) {
		return nil, BadRequest("request body is not valid UTF-8")
	}
	return body, nil
}

// MediaType returns the request's media type, lower-cased, "" when absent.
func MediaType(r *http.Request) (string, error) {
	ct := r.Header.Values("Content-Type")
	if len(ct) == 0 {
		return "", nil
	}
	if len(ct) > 1 {
		return "", BadRequest("repeated Content-Type header")
	}
	mt, _, err := mime.ParseMediaType(ct[0])
	if err != nil {
		return "", BadRequest("malformed Content-Type header")
	}
	return mt, nil
}

// Params reads a form-encoded or JSON-object body as single-valued
// parameters. Repeated parameters, non-scalar JSON values and other media
// types are errors; numbers keep their literal text.
func Params(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	mt, err := MediaType(r)
	if err != nil {
		return nil, err
	}
	body, err := ReadBody(w, r)
	if err != nil {
		return nil, err
	}
	switch {
	case mt == "application/x-www-form-urlencoded" || (mt == "" && len(bytes.TrimSpace(body)) == 0):
		return FormParams(body)
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return JSONParams(body)
	}
	return nil, BadRequest("unsupported Content-Type %q: send application/x-www-form-urlencoded or application/json", mt)
}

// FormParams parses a form-encoded body.
func FormParams(body []byte) (map[string]string, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, BadRequest("malformed form body")
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		if len(v) > 1 {
			return nil, BadRequest("parameter %q is repeated", k)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
			return nil, BadRequest("parameter %q is not valid UTF-8", k)
		}
		out[k] = v[0]
	}
	return out, nil
}

// JSONParams parses a flat JSON object of scalars (through ParseJSON):
// strings as they are, numbers by their literal text; any other value is
// an error.
func JSONParams(body []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := ParseJSON(body, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for key, v := range raw {
		switch v[0] {
		case '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, BadRequest("malformed JSON body")
			}
			out[key] = s
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			out[key] = string(v)
		default:
			return nil, BadRequest("parameter %q must be a string", key)
		}
	}
	return out, nil
}

// MaxJSONDepth is how deeply a request's JSON may nest objects and arrays.
const MaxJSONDepth = 32

// DecodeJSON reads a JSON request body into v: the body must be labelled
// application/json (or +json); then ReadBody's limits and ParseJSON's rules
// apply. Every route that takes a JSON body reads it here or via Params.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	mt, err := MediaType(r)
	if err != nil {
		return err
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return BadRequest("Content-Type must be application/json")
	}
	body, err := ReadBody(w, r)
	if err != nil {
		return err
	}
	return ParseJSON(body, v)
}

// ParseJSON is tokengate's one JSON request reader; its strictness is the
// same for every dialect:
//
//   - size: the body was read by ReadBody, so at most MaxBody bytes (413
//     beyond) of valid UTF-8;
//   - shape: exactly one JSON object; anything before or after it, or a
//     body that is another JSON value (array, string, null), is a 400;
//   - duplicate keys: a key repeated in the same object, also when the two
//     spellings differ only in case (encoding/json matches struct fields
//     case-insensitively, so they could name the same field), is a 400 at
//     any depth: two readers must never disagree on which value counts;
//   - nesting: at most MaxJSONDepth levels of objects and arrays;
//   - unknown fields are allowed, as clients add their own; a field of the
//     wrong type is a 400 naming it.
//
// Errors are *Problem values of KindInvalidRequest (400).
func ParseJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return BadRequest("request body must be a JSON object")
	}
	if err := checkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("unexpected data after the JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return BadRequest("field %q has the wrong type", typeErr.Field)
		}
		return BadRequest("request body must be a JSON object")
	}
	return nil
}

// checkObject walks the rest of an object whose '{' was just read,
// refusing duplicate keys and nesting deeper than MaxJSONDepth.
func checkObject(dec *json.Decoder, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return BadRequest("malformed JSON body")
		}
		key, _ := kt.(string)
		fold := FoldKey(key)
		if seen[fold] {
			return BadRequest("parameter %q is repeated", key)
		}
		seen[fold] = true
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return BadRequest("malformed JSON body")
	}
	return nil
}

// FoldKey maps key to one spelling per case-insensitive class, so that
// FoldKey(a) == FoldKey(b) exactly when encoding/json would match a and b to
// the same struct field (strings.EqualFold, which also folds the long s
// and the Kelvin sign onto s and k).
func FoldKey(key string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		return m
	}, key)
}

// checkValue walks one value inside a container at depth.
func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return BadRequest("malformed JSON body")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= MaxJSONDepth {
		return BadRequest("JSON body nests deeper than %d levels", MaxJSONDepth)
	}
	if d == '{' {
		return checkObject(dec, depth+1)
	}
	for dec.More() { // '['
		if err := checkValue(dec, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return BadRequest("malformed JSON body")
	}
	return nil
}

// Authorization returns the single Authorization header, "" when absent.
func Authorization(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	}
	return "", BadRequest("repeated Authorization header")
}

// ErrNoCredentials says no credentials of the asked-for scheme were sent.
var ErrNoCredentials = errors.New("no credentials")

// malformedBasic is a client's unreadable Basic header: client
// authentication failed (401), not a malformed request.
func malformedBasic() *Problem {
	return New(KindInvalidClient, "malformed Basic credentials")
}

// BasicAuth returns HTTP Basic credentials, form-decoded as RFC 6749 §2.3.1
// says. ErrNoCredentials when the request has no Basic header.
func BasicAuth(r *http.Request) (id, secret string, err error) {
	h, err := Authorization(r)
	if err != nil {
		return "", "", err
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Basic") {
		return "", "", ErrNoCredentials
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil || !utf8.Valid(raw) {
		return "", "", malformedBasic()
	}
	u, p, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", malformedBasic()
	}
	if id, err = url.QueryUnescape(u); err != nil {
		return "", "", malformedBasic()
	}
	if secret, err = url.QueryUnescape(p); err != nil {
		return "", "", malformedBasic()
	}
	return id, secret, nil
}

// BearerToken returns the token of an `Authorization: Bearer` header;
// ErrNoCredentials when there is none.
func BearerToken(r *http.Request) (string, error) {
	return SchemeToken(r, "Bearer")
}

// SchemeToken returns the token of an `Authorization: <scheme> <token>`
// header (scheme compared case-insensitively), ErrNoCredentials when the
// request has no such header.
func SchemeToken(r *http.Request, scheme string) (string, error) {
	h, err := Authorization(r)
	if err != nil {
		return "", err
	}
	s, tok, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(s, scheme) {
		return "", ErrNoCredentials
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", BadRequest("empty %s token", strings.ToLower(scheme))
	}
	return tok, nil
}

// WriteJSON writes v as JSON with status; token responses must never be cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Challenge sets the WWW-Authenticate header that every 401 must carry
// (RFC 9110 §15.5.2): scheme is "Bearer" (RFC 6750) or "Basic" (RFC 7617),
// realm "" means Realm, and params are further auth-param name,
// value pairs (error, error_description, scope). Values are kept inside
// their quoted-string: quotes, backslashes and non-printable bytes are dropped.
func Challenge(h http.Header, scheme, realm string, params ...string) {
	h.Set("WWW-Authenticate", challenge(scheme, realm, params))
}

// AddChallenge adds a further challenge, for another scheme, beside the
// one Challenge set (as DPoP's is offered beside Bearer, RFC 9449 §7.1).
func AddChallenge(h http.Header, scheme, realm string, params ...string) {
	h.Add("WWW-Authenticate", challenge(scheme, realm, params))
}

func challenge(scheme, realm string, params []string) string {
	if realm == "" {
		realm = Realm
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString(` realm="`)
	b.WriteString(QuoteSafe(realm))
	b.WriteByte('"')
	if scheme == "Basic" {
		b.WriteString(`, charset="UTF-8"`)
	}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] == "" {
			continue
		}
		b.WriteString(", ")
		b.WriteString(params[i])
		b.WriteString(`="`)
		b.WriteString(QuoteSafe(params[i+1]))
		b.WriteByte('"')
	}
	return b.String()
}

// QuoteSafe keeps a value inside an RFC 9110 quoted-string.
func QuoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
