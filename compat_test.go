package tokengate_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
)

// appTable creates an application's users table (id, email, password_hash,
// role) with one bcrypt user and returns nothing: the caller knows the DSN.
func appTable(t *testing.T, driver, dsn string) {
	t.Helper()
	drv := map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[driver]
	db, err := sql.Open(drv, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("app-pw"), bcrypt.MinCost)
	ph := "?, ?, ?, ?"
	if driver == "postgres" {
		ph = "$1, $2, $3, $4"
	}
	for _, q := range []string{`CREATE TABLE members (id INTEGER, email TEXT, password_hash TEXT, role TEXT)`,
		`CREATE TABLE secrets (x TEXT)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO members VALUES (`+ph+`)`, 42, "carol@example.com", string(hash), "editor"); err != nil {
		t.Fatal(err)
	}
}

func amdb(instance, database, collection, userCol, passCol, u, p string) string {
	return fmt.Sprintf(`{"authTokenType":"AM_DB","authTokenAMDB":{"instance":%q,"database":%q,"collection":%q,"usernameColumn":%q,"passwordColumn":%q,"u":%q,"p":%q}}`,
		instance, database, collection, userCol, passCol, u, p)
}

func wantAPIMakerOK(t *testing.T, r response) (token, refresh string) {
	t.Helper()
	data, _ := r.json["data"].(map[string]any)
	if r.status != 200 || r.json["success"] != true || r.json["statusCode"] != float64(200) || data == nil {
		t.Fatalf("apimaker: %d %s", r.status, r.body)
	}
	token, _ = data["token"].(string)
	refresh, _ = data["refresh_token"].(string)
	if _, ok := data["expires_in"].(float64); !ok || token == "" || refresh == "" {
		t.Fatalf("apimaker data: %v", data)
	}
	return token, refresh
}

func wantAPIMakerError(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status || r.json["success"] != false || r.json["statusCode"] != float64(status) || r.json["message"] == "" {
		t.Fatalf("got %d %s, want %d with success:false", r.status, r.body, status)
	}
}

func TestAPIMaker(t *testing.T) {
	dir := t.TempDir()
	appDB := filepath.Join(dir, "appdata.db")
	appTable(t, "sqlite", appDB)
	tables := fmt.Sprintf(`user_table app {
			driver sqlite
			dsn %s
			table members
			username_column email
			password_column password_hash
			id_column id
			roles_column role
		}
		endpoint apimaker {
			access_ttl 3h
		}`, appDB)
	pgDSN := pgtest.Schema(t) // skips (or, under CI, fails) without PostgreSQL
	appTable(t, "postgres", pgDSN)
	pgBlock := fmt.Sprintf(`user_table pgapp {
			driver postgres
			dsn "%s"
			database appdb
			table members
			username_column email
			password_column password_hash
		}`, pgDSN)
	g := startGateway(t, tables+"\n\t\t"+pgBlock)

	t.Run("AM: the seed's request for a gateway user", func(t *testing.T) {
		r := g.post(apimakerPath, "application/json", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"`+userPassword+`"}}`)
		token, refresh := wantAPIMakerOK(t, r)
		if r.json["data"].(map[string]any)["expires_in"] != float64(10800) {
			t.Fatalf("expires_in %v, want the endpoint's 3h", r.json["data"])
		}
		if up := g.get("/admin/x", token); up.status != 200 {
			t.Fatalf("guard: %d", up.status)
		}
		ref := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if ref.status != 200 || ref.json["access_token"] == nil {
			t.Fatalf("apimaker refresh_token at /token: %d %s", ref.status, ref.body)
		}
	})
	t.Run("AM_DB: SQLite table", func(t *testing.T) {
		r := g.post(apimakerPath, "application/json", amdb("app", "appdata", "members", "email", "password_hash", "carol@example.com", "app-pw"))
		token, refresh := wantAPIMakerOK(t, r)
		up := g.get("/api", token)
		if up.status != 200 || !strings.Contains(up.body, "sub=app:42 hdr=app:42 roles=editor") {
			t.Fatalf("guard with table user: %d %s", up.status, up.body)
		}
		ref := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if ref.status != 200 {
			t.Fatalf("refresh of a table user: %d %s", ref.status, ref.body)
		}
	})
	t.Run("AM_DB: PostgreSQL table", func(t *testing.T) {
		r := g.post(apimakerPath, "application/json", amdb("pgapp", "appdb", "members", "email", "password_hash", "carol@example.com", "app-pw"))
		token, _ := wantAPIMakerOK(t, r)
		if up := g.get("/api", token); up.status != 200 || !strings.Contains(up.body, "sub=pgapp:carol@example.com") {
			t.Fatalf("guard with postgres table user: %d %s", up.status, up.body)
		}
	})
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"wrong gateway password", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"no"}}`, 401},
		{"wrong table password", amdb("app", "appdata", "members", "email", "password_hash", "carol@example.com", "no"), 401},
		{"unknown table user", amdb("app", "appdata", "members", "email", "password_hash", "zed@example.com", "x"), 401},
		{"unconfigured instance", amdb("nope", "appdata", "members", "email", "password_hash", "carol@example.com", "app-pw"), 400},
		{"unconfigured table", amdb("app", "appdata", "secrets", "email", "password_hash", "carol@example.com", "app-pw"), 400},
		{"unconfigured column", amdb("app", "appdata", "members", "x", "password_hash", "carol@example.com", "app-pw"), 400},
		{"injection in the table name", amdb("app", "appdata", "members; DROP TABLE members", "email", "password_hash", "a", "b"), 400},
		{"wrong database", amdb("app", "other", "members", "email", "password_hash", "carol@example.com", "app-pw"), 400},
		{"unknown authTokenType", `{"authTokenType":"XX"}`, 400},
		{"AM without credentials", `{"authTokenType":"AM","authTokenAM":{"u":"alice"}}`, 400},
		{"not JSON", `authTokenType=AM`, 400},
		{"wrong field type", `{"authTokenType":"AM","authTokenAM":"alice"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIMakerError(t, g.post(apimakerPath, "application/json", tc.body), tc.status)
		})
	}
	// Nothing was dropped by the injection attempt.
	if r := g.post(apimakerPath, "application/json", amdb("app", "appdata", "members", "email", "password_hash", "carol@example.com", "app-pw")); r.status != 200 {
		t.Fatalf("table user after the bad requests: %d", r.status)
	}
}

const apimakerPath = "/api/system-api/user-path/token"

func TestAPIMakerRequireRole(t *testing.T) {
	g := startGateway(t, "endpoint apimaker /am/token {\n\t\t\trequire_role admin\n\t\t}")
	body := `{"authTokenType":"AM","authTokenAM":{"u":"bob","p":"` + userPassword + `"}}`
	wantAPIMakerError(t, g.post("/am/token", "application/json", body), 401)
	bob := g.passwordToken("bob")["access_token"].(string)
	wantAPIMakerError(t, g.post("/am/token", "application/json", body, "Authorization", "Bearer "+bob), 403)
	alice := g.passwordToken("alice")["access_token"].(string)
	wantAPIMakerOK(t, g.post("/am/token", "application/json", body, "Authorization", "Bearer "+alice))
}

func TestEventhos(t *testing.T) {
	_, clientHash := hashes()
	g := startGateway(t, "client restricted "+clientHash+" grants password\n\t\tendpoint eventhos")
	const path = "/auth/token"
	t.Run("client_credentials, the seed's form request", func(t *testing.T) {
		r := g.post(path, "application/x-www-form-urlencoded", "client_id=billing&client_secret="+clientSecret+"&grant_type=client_credentials")
		if r.status != 201 || r.json["code"] != float64(200000) || r.json["message"] != "Token generated for client billing" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		c := r.json["content"].(map[string]any)
		for _, f := range []string{"jwt_token", "name", "description", "client_id", "identifier"} {
			if _, ok := c[f].(string); !ok {
				t.Errorf("content.%s missing or not a string: %v", f, c[f])
			}
		}
		if roles, ok := c["roles"].([]any); !ok || len(roles) != 1 || roles[0] != "reader" {
			t.Errorf("content.roles %v", c["roles"])
		}
		if up := g.get("/orders/1", c["jwt_token"].(string)); up.status != 200 {
			t.Fatalf("guard: %d", up.status)
		}
	})
	t.Run("password grant as JSON", func(t *testing.T) {
		r := g.post(path, "application/json", `{"grant_type":"password","username":"alice","password":"`+userPassword+`"}`)
		if r.status != 201 || r.json["code"] != float64(200000) {
			t.Fatalf("%d %s", r.status, r.body)
		}
		c := r.json["content"].(map[string]any)
		for _, f := range []string{"jwt_token", "name", "description", "user_id", "username"} {
			if _, ok := c[f].(string); !ok {
				t.Errorf("content.%s missing: %v", f, c)
			}
		}
		if _, ok := c["client_id"]; ok {
			t.Error("password content carries client_id")
		}
	})
	for _, tc := range []struct {
		name, body string
		code       float64
	}{
		{"wrong client secret", "grant_type=client_credentials&client_id=billing&client_secret=no", 400001},
		{"wrong user password", "grant_type=password&username=alice&password=no", 400001},
		{"unknown client", "grant_type=client_credentials&client_id=ghost&client_secret=x", 400004},
		{"unknown user", "grant_type=password&username=ghost&password=x", 400004},
		{"client not allowed client tokens", "grant_type=client_credentials&client_id=restricted&client_secret=" + clientSecret, 400011},
		{"unknown grant", "grant_type=implicit", 500000},
		{"missing secret", "grant_type=client_credentials&client_id=billing", 500000},
		{"repeated parameter", "grant_type=password&grant_type=password", 500000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.post(path, "application/x-www-form-urlencoded", tc.body)
			if r.status != 400 || r.json["code"] != tc.code || r.json["message"] == "" {
				t.Fatalf("got %d %s, want 400 with code %v", r.status, r.body, tc.code)
			}
		})
	}
}

func TestOwin(t *testing.T) {
	g := startGateway(t, "endpoint owin")
	// The seed's own example: GET, Content-Type: application/json, a form body.
	seedRequest := func() response {
		req, _ := http.NewRequest(http.MethodGet, base+"/Token", strings.NewReader("grant_type=password&username=alice&password="+url.QueryEscape(userPassword)))
		req.Header.Set("Content-Type", "application/json")
		return g.do(req)
	}
	r := seedRequest()
	if r.status != 200 || r.json["token_type"] != "bearer" || r.json["userName"] != "alice" || r.json["userId"] != "alice" || r.json["role"] != "admin" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	expiresIn, ok := r.json["expires_in"].(float64)
	issued, err1 := time.Parse(http.TimeFormat, r.json[".issued"].(string))
	expires, err2 := time.Parse(http.TimeFormat, r.json[".expires"].(string))
	if !ok || err1 != nil || err2 != nil || expires.Sub(issued) != time.Duration(expiresIn)*time.Second ||
		!strings.HasSuffix(r.json[".issued"].(string), " GMT") {
		t.Fatalf(".issued/.expires/expires_in disagree: %v %v %v", r.json[".issued"], r.json[".expires"], r.json["expires_in"])
	}
	first := r.json["access_token"].(string)
	if up := g.get("/api", first); up.status != 200 {
		t.Fatalf("first token: %d", up.status)
	}
	// No pause: issue times are exact to the microsecond, so a token of
	// the same second (or millisecond) as the previous one still replaces it.
	second := g.post("/Token", "application/x-www-form-urlencoded", "grant_type=password&username=alice&password="+url.QueryEscape(userPassword))
	if second.status != 200 {
		t.Fatalf("POST: %d %s", second.status, second.body)
	}
	if up := g.get("/api", first); up.status != 401 {
		t.Fatalf("the earlier token still works after a new one: %d", up.status)
	}
	if up := g.get("/api", second.json["access_token"].(string)); up.status != 200 {
		t.Fatalf("the new token: %d", up.status)
	}
	// Tokens of the same second: the newest one wins too.
	third := g.post("/Token", "application/x-www-form-urlencoded", "grant_type=password&username=alice&password="+url.QueryEscape(userPassword))
	if up := g.get("/api", second.json["access_token"].(string)); up.status != 401 {
		t.Fatalf("a token from the same second survived a newer one: %d", up.status)
	}
	if up := g.get("/api", third.json["access_token"].(string)); up.status != 200 {
		t.Fatalf("the newest token: %d", up.status)
	}
	for _, tc := range []struct {
		name, body string
		headers    []string
		status     int
		code       string
	}{
		{"wrong password", "grant_type=password&username=alice&password=no", nil, 400, "invalid_grant"},
		{"other grant", "grant_type=client_credentials", nil, 400, "unsupported_grant_type"},
		{"missing username", "grant_type=password&password=x", nil, 400, "invalid_request"},
		{"bad client", "grant_type=password&username=alice&password=x", []string{"Authorization", basic("billing", "no")}, 401, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.post("/Token", "application/x-www-form-urlencoded", tc.body, tc.headers...)
			if r.status != tc.status || r.json["error"] != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
	if r := g.post("/Token", "application/x-www-form-urlencoded", "grant_type=password&username=bob&password="+url.QueryEscape(userPassword),
		"Authorization", basic("billing", clientSecret)); r.status != 200 {
		t.Fatalf("with a valid Basic client: %d %s", r.status, r.body)
	}
}

func TestSingleSession(t *testing.T) {
	g := startGateway(t, "single_session")
	firstSession := g.passwordToken("alice")
	first := firstSession["access_token"].(string)
	otherUser := g.passwordToken("bob")["access_token"].(string)
	secondSession := g.passwordToken("alice")
	second := secondSession["access_token"].(string)
	if r := g.get("/api", first); r.status != 401 {
		t.Fatalf("older token of the subject: %d", r.status)
	}
	// The previous session's refresh token is ended too: it neither
	// continues that session nor, by refreshing, evicts the current one.
	if r := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {firstSession["refresh_token"].(string)}}); r.status != 400 || r.json["error"] != "invalid_grant" {
		t.Fatalf("refresh token of the previous session: %d %s", r.status, r.body)
	}
	for _, tok := range []string{second, otherUser} {
		if r := g.get("/api", tok); r.status != 200 {
			t.Fatalf("newest token / another subject's token: %d", r.status)
		}
	}
	if r := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {secondSession["refresh_token"].(string)}}); r.status != 200 {
		t.Fatalf("refresh token of the current session: %d %s", r.status, r.body)
	}
	c1 := g.clientToken()
	c2 := g.clientToken()
	if g.get("/api", c1).status != 401 || g.get("/api", c2).status != 200 {
		t.Fatal("single_session does not apply to client_credentials")
	}
}
