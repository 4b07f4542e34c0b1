package tokengate_test

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.20s", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// at sends a request to the listener at addr with the given Host header.
func (g *gateway) at(method, addr, host, path, token string, body io.Reader, headers ...string) response {
	g.t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, body)
	req.Host = host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return g.do(req)
}

// TestIssuerFromSiteAddress: with no issuer configured, each site's issuer
// is its own address, whatever Host header a caller sends, and two sites
// sharing one store (on one server or on two) refuse each other's tokens.
func TestIssuerFromSiteAddress(t *testing.T) {
	_, clientHash := hashes()
	store := filepath.Join(t.TempDir(), "shared.db")
	site := func(addr, name string) string {
		return fmt.Sprintf(`%s {
	tokengate {
		store sqlite %s
		client billing %s
	}
	respond "%s {http.auth.user.id} {http.auth.user.iss}"
}
`, addr, store, clientHash, name)
	}
	// Free ports from TestMain: A and B share one listener (B by name), C
	// has its own.
	addrA := strings.TrimPrefix(base, "http://")
	addrC := strings.TrimPrefix(base2, "http://")
	hostB := "other.test:" + strings.Split(addrA, ":")[1]
	g := &gateway{t: t, tc: newTester(t)}
	g.tc.InitServer("{\n"+testGlobals+"\n}\n"+site(base, "A")+site("http://"+hostB, "B")+
		site(base2, "C"), "caddyfile")
	sites := []struct{ name, addr, host, iss string }{
		{"A", addrA, addrA, base},
		{"B", addrA, hostB, "http://" + hostB},
		{"C", addrC, addrC, base2},
	}
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	tokens := map[string]string{}
	for _, s := range sites {
		md := g.at(http.MethodGet, s.addr, s.host, "/.well-known/oauth-authorization-server", "", nil)
		if md.status != 200 || md.json["issuer"] != s.iss || md.json["token_endpoint"] != s.iss+"/token" {
			t.Fatalf("site %s metadata: %d %s", s.name, md.status, md.body)
		}
		// The port in Host is the caller's to choose; the issuer is not.
		spoofed := strings.Split(s.host, ":")[0] + ":1234"
		if md := g.at(http.MethodGet, s.addr, spoofed, "/.well-known/oauth-authorization-server", "", nil); md.json["issuer"] != s.iss {
			t.Fatalf("site %s metadata with Host %s: issuer %v", s.name, spoofed, md.json["issuer"])
		}
		r := g.at(http.MethodPost, s.addr, spoofed, "/token", "", strings.NewReader(form),
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", basic("billing", clientSecret))
		if r.status != 200 {
			t.Fatalf("site %s token: %d %s", s.name, r.status, r.body)
		}
		tok := r.json["access_token"].(string)
		if c := claimsOf(t, tok); c["iss"] != s.iss || fmt.Sprint(c["aud"]) != "["+s.iss+"]" {
			t.Fatalf("site %s token: iss %v aud %v, want %s", s.name, c["iss"], c["aud"], s.iss)
		}
		tokens[s.name] = tok
	}
	for _, s := range sites {
		for _, from := range sites {
			r := g.at(http.MethodGet, s.addr, s.host, "/x", tokens[from.name], nil)
			if from.name == s.name {
				if r.status != 200 || r.body != s.name+" billing "+s.iss {
					t.Errorf("site %s, own token: %d %q", s.name, r.status, r.body)
				}
				continue
			}
			if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "wrong issuer") {
				t.Errorf("site %s accepted site %s's token: %d %q %s", s.name, from.name, r.status, r.body, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	// Introspection and revocation follow the site's issuer too.
	r := g.at(http.MethodPost, addrA, hostB, "/token/introspect", "",
		strings.NewReader(url.Values{"token": {tokens["A"]}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", basic("billing", clientSecret))
	if r.status != 200 || r.json["active"] != false {
		t.Fatalf("site B introspecting site A's token: %d %s", r.status, r.body)
	}

	// A catch-all site has no address to take the issuer from: the config
	// is refused, with the fix in the message.
	catchAll := fmt.Sprintf(":%d", freePorts(1)[0])
	res, err := http.Post(fmt.Sprintf("http://localhost:%d/load", adminPort), "text/caddyfile",
		strings.NewReader("{\n"+testGlobals+"\n}\n"+catchAll+" {\n\ttokengate {\n\t\tstore sqlite "+store+"\n\t}\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode == 200 || !strings.Contains(string(body), "set issuer") {
		t.Fatalf("catch-all site without issuer: %d %s", res.StatusCode, body)
	}
	// The running config is unchanged.
	if r := g.at(http.MethodGet, addrA, addrA, "/x", tokens["A"], nil); r.status != 200 {
		t.Fatalf("site A after the refused load: %d", r.status)
	}
}

// usersTable creates an application user table holding the given
// usernames (password "app-pw") with their roles.
func usersTable(t *testing.T, path string, users map[string]string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("app-pw"), bcrypt.MinCost)
	if _, err := db.Exec(`CREATE TABLE members (email TEXT, password_hash TEXT, role TEXT)`); err != nil {
		t.Fatal(err)
	}
	for name, roles := range users {
		if _, err := db.Exec(`INSERT INTO members VALUES (?, ?, ?)`, name, string(hash), roles); err != nil {
			t.Fatal(err)
		}
	}
}

func tableBlock(path string) string {
	return fmt.Sprintf(`user_table app {
			driver sqlite
			dsn %s
			table members
			username_column email
			password_column password_hash
			roles_column role
		}
		endpoint apimaker
		endpoint owin`, path)
}

// TestTableUsersHaveTheirOwnSubjects: a user_table user and a gateway user
// of the same name are different subjects for the identity headers,
// placeholders and subject revocation; refresh keeps the table subject; and
// a table user's role called admin does not manage entity secrets.
func TestTableUsersHaveTheirOwnSubjects(t *testing.T) {
	appDB := filepath.Join(t.TempDir(), "app.db")
	usersTable(t, appDB, map[string]string{"alice": "admin", "dora": "editor"})
	g := startGateway(t, tableBlock(appDB)+"\n\t\tentity aa-1")
	amdbAlice := amdb("app", "app", "members", "email", "password_hash", "alice", "app-pw")
	tableTok, refresh := wantAPIMakerOK(t, g.post(apimakerPath, "application/json", amdbAlice))
	if c := claimsOf(t, tableTok); c["sub"] != "app:alice" || c["kind"] != "table:app" {
		t.Fatalf("table user's token: sub %v kind %v", c["sub"], c["kind"])
	}
	if up := g.get("/api", tableTok); up.status != 200 || !strings.Contains(up.body, "sub=app:alice hdr=app:alice roles=admin") {
		t.Fatalf("guard with the table user: %d %s", up.status, up.body)
	}
	gatewayTok := g.passwordToken("alice")["access_token"].(string)
	if up := g.get("/api", gatewayTok); !strings.Contains(up.body, "sub=alice hdr=alice") {
		t.Fatalf("guard with the gateway user: %s", up.body)
	}
	// A role called admin in the application's table is not the gateway's.
	// (Checked before OWIN below revokes the gateway alice's tokens, with
	// a cut-off in whole seconds that a token minted right after it would
	// still fall under.)
	if r := g.tsPost("/entity/secret/read", seedBody("aa-1", ""), tableTok); r.status != 403 || r.json["errorCode"] != "FORBIDDEN" {
		t.Fatalf("table admin reading a secret: %d %s", r.status, r.body)
	}
	if r := g.tsPost("/entity/secret/read", seedBody("aa-1", ""), gatewayTok); r.status != 200 {
		t.Fatalf("gateway admin reading a secret: %d %s", r.status, r.body)
	}
	// OWIN revokes every earlier token of its subject: the gateway user's
	// subject, not the table user's.
	owin := g.post("/Token", "application/x-www-form-urlencoded", "grant_type=password&username=alice&password="+url.QueryEscape(userPassword))
	if owin.status != 200 || owin.json["userId"] != "alice" || owin.json["userName"] != "alice" {
		t.Fatalf("owin: %d %s", owin.status, owin.body)
	}
	if up := g.get("/api", gatewayTok); up.status != 401 {
		t.Fatalf("the gateway user's earlier token after OWIN: %d", up.status)
	}
	if up := g.get("/api", tableTok); up.status != 200 {
		t.Fatalf("the table user's token was revoked with the gateway user's: %d", up.status)
	}
	// Refresh of a table user keeps working, with the table subject.
	ref := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if ref.status != 200 {
		t.Fatalf("refresh of a table user: %d %s", ref.status, ref.body)
	}
	if c := claimsOf(t, ref.json["access_token"].(string)); c["sub"] != "app:alice" {
		t.Fatalf("refreshed table token: sub %v", c["sub"])
	}
	intro := g.form("/token/introspect", url.Values{"token": {ref.json["refresh_token"].(string)}}, "Authorization", basic("billing", clientSecret))
	if intro.json["sub"] != "app:alice" {
		t.Fatalf("introspected table refresh token: %s", intro.body)
	}
}

// TestEntityAdminPermission: only the principal kinds entity_admin_kind
// names (gateway users by default) get entity_admin_role's permission.
func TestEntityAdminPermission(t *testing.T) {
	_, clientHash := hashes()
	appDB := filepath.Join(t.TempDir(), "app.db")
	usersTable(t, appDB, map[string]string{"tina": "admin"})
	for _, tc := range []struct {
		name, extra string
		allowed     map[string]bool // principal -> may read a secret
	}{
		{"default", "", map[string]bool{"user": true}},
		{"clients and the table opted in", "entity_admin_kind client table:app", map[string]bool{"client": true, "table": true}},
		{"another role", "entity_admin_role secops", map[string]bool{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, tableBlock(appDB)+`
		client ops `+clientHash+` roles admin
		entity aa-1 roles member
		entity boss roles admin
		`+tc.extra)
			// The entity boss gets its secret from a gateway admin while
			// the default allows it; then its own token is tried.
			secret := ""
			if tc.name == "default" {
				secret = g.tsPost("/entity/secret/read", seedBody("boss", ""), g.adminToken()).json["secret"].(string)
			}
			tokens := map[string]string{
				"user":   g.adminToken(),
				"client": g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("ops", clientSecret)).json["access_token"].(string),
			}
			tokens["table"], _ = wantAPIMakerOK(t, g.post(apimakerPath, "application/json", amdb("app", "app", "members", "email", "password_hash", "tina", "app-pw")))
			if secret != "" {
				r := g.tsPost("/entity/token/generate", `{"id":"boss","secret":"`+secret+`"}`, "")
				if r.status != 200 {
					t.Fatalf("entity token: %d %s", r.status, r.body)
				}
				tokens["entity"] = r.json["accessToken"].(string)
			}
			for who, tok := range tokens {
				for _, path := range []string{"/entity/secret/read", "/entity/secret/reset"} {
					r := g.tsPost(path, seedBody("aa-1", ""), tok)
					if want := map[bool]int{true: 200, false: 403}[tc.allowed[who]]; r.status != want {
						t.Errorf("%s token with role admin at %s: %d %s, want %d", who, path, r.status, r.body, want)
					}
				}
			}
		})
	}
}

// TestOwinHonoursClientGrants: OWIN's password grant refuses a client
// whose grants exclude password, as /token does.
func TestOwinHonoursClientGrants(t *testing.T) {
	_, clientHash := hashes()
	g := startGateway(t, "client cconly "+clientHash+" grants client_credentials\n\t\tendpoint owin")
	body := "grant_type=password&username=bob&password=" + url.QueryEscape(userPassword)
	for _, tc := range []struct {
		client string
		status int
		code   string
	}{
		{"cconly", 400, "unauthorized_client"},
		{"narrow", 200, ""}, // grants password refresh_token
		{"billing", 200, ""},
	} {
		r := g.post("/Token", "application/x-www-form-urlencoded", body, "Authorization", basic(tc.client, clientSecret))
		if r.status != tc.status || (tc.code != "" && r.json["error"] != tc.code) {
			t.Errorf("client %s: %d %s, want %d %s", tc.client, r.status, r.body, tc.status, tc.code)
		}
		// /token agrees.
		tr := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {userPassword}}, "Authorization", basic(tc.client, clientSecret))
		if tr.status != tc.status {
			t.Errorf("client %s at /token: %d, OWIN %d", tc.client, tr.status, r.status)
		}
	}
}

// TestEvery401IsChallenged: every route's 401 carries WWW-Authenticate
// with the configured realm (RFC 9110 §15.5.2), whatever the dialect and
// wherever the credentials came from.
func TestEvery401IsChallenged(t *testing.T) {
	g := startGateway(t, "realm gw\n\t\tentity aa-1\n\t\tendpoint owin\n\t\tendpoint apimaker\n\t\tendpoint apimaker /am/guarded {\n\t\t\trequire_role admin\n\t\t}")
	form := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, path, ctype, body string
		headers                 []string
		scheme                  string
	}{
		{"guard, no token", "/api", "", "", nil, "Bearer"},
		{"guard, bad token", "/api", "", "", []string{"Authorization", "Bearer x.y.z"}, "Bearer"},
		{"token, body credentials", "/token", form, "grant_type=client_credentials&client_id=billing&client_secret=no", nil, "Basic"},
		{"token, Basic credentials", "/token", form, "grant_type=client_credentials", []string{"Authorization", basic("billing", "no")}, "Basic"},
		{"token, no client", "/token", form, "grant_type=client_credentials", nil, "Basic"},
		{"token, broken Basic", "/token", form, "grant_type=client_credentials", []string{"Authorization", "Basic !!"}, "Basic"},
		{"introspect without client authentication", "/token/introspect", form, "token=x", nil, "Basic"},
		{"introspect, body credentials", "/token/introspect", form, "token=x&client_id=billing&client_secret=no", nil, "Basic"},
		{"revoke, wrong client", "/token/revoke", form, "token=x&client_id=billing&client_secret=no", nil, "Basic"},
		{"user token, wrong password", "/user/token/generate", "application/json", `{"username":"alice","password":"no"}`, nil, "Bearer"},
		{"entity token, wrong secret", "/entity/token/generate", "application/json", `{"id":"aa-1","secret":"no"}`, nil, "Bearer"},
		{"secret read, no token", "/entity/secret/read", "application/json", seedBody("aa-1", ""), nil, "Bearer"},
		{"secret reset, bad token", "/entity/secret/reset", "application/json", seedBody("aa-1", ""), []string{"Authorization", "Bearer x.y.z"}, "Bearer"},
		{"apimaker, wrong password", apimakerPath, "application/json", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"no"}}`, nil, "Bearer"},
		{"apimaker require_role, no token", "/am/guarded", "application/json", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"no"}}`, nil, "Bearer"},
		{"owin, bad client", "/Token", form, "grant_type=password&username=alice&password=x", []string{"Authorization", basic("billing", "no")}, "Basic"},
		{"owin, broken Basic", "/Token", form, "grant_type=password&username=alice&password=x", []string{"Authorization", "Basic !!"}, "Basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.ctype == "" {
				r = g.get(tc.path, "", tc.headers...)
			} else {
				r = g.post(tc.path, tc.ctype, tc.body, tc.headers...)
			}
			www := r.header.Get("WWW-Authenticate")
			if r.status != 401 || !strings.HasPrefix(www, tc.scheme+` realm="gw"`) {
				t.Fatalf("%d %s, WWW-Authenticate %q; want 401 with a %s challenge in realm gw", r.status, r.body, www, tc.scheme)
			}
		})
	}
}
