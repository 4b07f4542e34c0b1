package tokengate_test

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"
)

const txn = "f35761ac-4a18-11e8-96ff-0277a9fbfedc"

// seedBody is the seed's own example request for the secret routes.
func seedBody(entityID string, extra string) string {
	return `{"ver":"1.0.0","timestamp":"2024-07-16T11:33:34.509Z","txnId":"` + txn + `","entityId":"` + entityID + `"` + extra + `}`
}

func (g *gateway) tsPost(path, body, token string) response {
	g.t.Helper()
	h := []string{}
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	return g.post(path, "application/json", body, h...)
}

// wantEnvelope checks ver, txnId and a fresh ISO-8601 timestamp.
func wantEnvelope(t *testing.T, r response) {
	t.Helper()
	if r.json["ver"] != "1.0.0" || r.json["txnId"] != txn {
		t.Fatalf("envelope not echoed: %s", r.body)
	}
	ts, _ := r.json["timestamp"].(string)
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
		t.Fatalf("timestamp %q is not a fresh ISO-8601 time", ts)
	}
}

func (g *gateway) adminToken() string {
	g.t.Helper()
	r := g.tsPost("/user/token/generate", `{"username":"alice","password":"`+userPassword+`"}`, "")
	if r.status != 200 {
		g.t.Fatalf("user token: %d %s", r.status, r.body)
	}
	return r.json["accessToken"].(string)
}

func TestTokenServiceRoutes(t *testing.T) {
	g := startGateway(t, "entity aa-1 roles member\n\t\tsecret_ttl 30d")

	t.Run("user token", func(t *testing.T) {
		r := g.tsPost("/user/token/generate", `{"ver":"1.0.0","timestamp":"2024-07-16T11:33:34.509Z","txnId":"`+txn+`","username":"alice","password":"`+userPassword+`"}`, "")
		if r.status != 200 || r.json["tokenType"] != "Bearer" || r.json["expiresIn"] != float64(900) || r.json["accessToken"] == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		wantEnvelope(t, r)
		if up := g.get("/admin/x", r.json["accessToken"].(string)); up.status != 200 {
			t.Fatalf("user token at the guard: %d", up.status)
		}
	})
	admin := g.adminToken()
	var first string
	t.Run("read creates, then returns the same secret", func(t *testing.T) {
		r := g.tsPost("/entity/secret/read", seedBody("aa-1", `,"secretExpiryDays":100`), admin)
		if r.status != 200 || r.json["entityId"] != "aa-1" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		wantEnvelope(t, r)
		first = r.json["secret"].(string)
		expiresOn, ok := r.json["expiresOn"].(float64)
		if !ok || math.Abs(expiresOn-float64(time.Now().Add(100*24*time.Hour).Unix())) > 60 {
			t.Fatalf("expiresOn %v, want about 100 days ahead", r.json["expiresOn"])
		}
		date, err := time.Parse(time.RFC3339Nano, r.json["expirationDate"].(string))
		if err != nil || date.Unix() != int64(expiresOn) {
			t.Fatalf("expirationDate %v does not agree with expiresOn %v", r.json["expirationDate"], expiresOn)
		}
		again := g.tsPost("/entity/secret/read", seedBody("aa-1", ""), admin)
		if again.json["secret"] != first || again.json["expiresOn"] != r.json["expiresOn"] {
			t.Fatalf("second read: %s", again.body)
		}
	})
	t.Run("entity token, accepted by the guard", func(t *testing.T) {
		r := g.tsPost("/entity/token/generate", `{"id":"aa-1","secret":"`+first+`"}`, "")
		if r.status != 200 || r.json["tokenType"] != "Bearer" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		up := g.get("/api", r.json["accessToken"].(string))
		if up.status != 200 || !strings.Contains(up.body, "sub=aa-1 hdr=aa-1 roles=member") {
			t.Fatalf("guard: %d %s", up.status, up.body)
		}
		cc := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("aa-1", first))
		if cc.status != 200 {
			t.Fatalf("entity via client_credentials: %d %s", cc.status, cc.body)
		}
	})
	t.Run("reset replaces the secret at once", func(t *testing.T) {
		r := g.tsPost("/entity/secret/reset", seedBody("aa-1", `,"secretExpiryDays":7`), admin)
		if r.status != 200 || r.json["secret"] == first || r.json["secret"] == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		wantEnvelope(t, r)
		fresh := r.json["secret"].(string)
		old := g.tsPost("/entity/token/generate", `{"id":"aa-1","secret":"`+first+`"}`, "")
		if old.status != 401 || old.json["errorCode"] != "UNAUTHORIZED" {
			t.Fatalf("old secret after reset: %d %s", old.status, old.body)
		}
		if r := g.tsPost("/entity/token/generate", `{"id":"aa-1","secret":"`+fresh+`"}`, ""); r.status != 200 {
			t.Fatalf("new secret: %d %s", r.status, r.body)
		}
		if r := g.tsPost("/entity/secret/read", seedBody("aa-1", ""), admin); r.json["secret"] != fresh {
			t.Fatalf("read after reset: %s", r.body)
		}
	})

	bob := g.passwordToken("bob")["access_token"].(string)
	for _, tc := range []struct {
		name, path, body, token string
		status                  int
		code                    string
		echo                    bool
	}{
		{"no token", "/entity/secret/read", seedBody("aa-1", ""), "", 401, "UNAUTHORIZED", true},
		{"bad token", "/entity/secret/read", seedBody("aa-1", ""), "x.y.z", 401, "UNAUTHORIZED", true},
		{"no admin role", "/entity/secret/reset", seedBody("aa-1", ""), bob, 403, "FORBIDDEN", true},
		{"unknown entity", "/entity/secret/read", seedBody("zz-9", ""), admin, 404, "NOT_FOUND", true},
		{"zero days", "/entity/secret/read", seedBody("aa-1", `,"secretExpiryDays":0`), admin, 400, "BAD_REQUEST", true},
		{"negative days", "/entity/secret/reset", seedBody("aa-1", `,"secretExpiryDays":-5`), admin, 400, "BAD_REQUEST", true},
		{"fractional days", "/entity/secret/read", seedBody("aa-1", `,"secretExpiryDays":1.5`), admin, 400, "BAD_REQUEST", true},
		{"string days", "/entity/secret/read", seedBody("aa-1", `,"secretExpiryDays":"10"`), admin, 400, "BAD_REQUEST", true},
		{"days over the maximum", "/entity/secret/read", seedBody("aa-1", `,"secretExpiryDays":100000`), admin, 400, "BAD_REQUEST", true},
		{"missing txnId", "/entity/secret/read", `{"ver":"1.0.0","timestamp":"2024-07-16T11:33:34.509Z","entityId":"aa-1"}`, admin, 400, "BAD_REQUEST", false},
		{"bad timestamp", "/entity/secret/read", `{"ver":"1.0.0","timestamp":"yesterday","txnId":"` + txn + `","entityId":"aa-1"}`, admin, 400, "BAD_REQUEST", true},
		{"missing entityId", "/entity/secret/read", `{"ver":"1.0.0","timestamp":"2024-07-16T11:33:34.509Z","txnId":"` + txn + `"}`, admin, 400, "BAD_REQUEST", true},
		{"not JSON", "/entity/secret/read", `entityId=aa-1`, admin, 400, "BAD_REQUEST", false},
		{"duplicate key", "/entity/secret/read", `{"ver":"1.0.0","timestamp":"2024-07-16T11:33:34.509Z","txnId":"` + txn + `","entityId":"aa-1","entityID":"zz"}`, admin, 400, "BAD_REQUEST", false},
		{"wrong user password", "/user/token/generate", `{"ver":"1.0.0","txnId":"` + txn + `","username":"alice","password":"no"}`, "", 401, "UNAUTHORIZED", true},
		{"missing password", "/user/token/generate", `{"username":"alice"}`, "", 400, "BAD_REQUEST", false},
		{"wrong entity secret", "/entity/token/generate", `{"ver":"1.0.0","txnId":"` + txn + `","id":"aa-1","secret":"nope"}`, "", 401, "UNAUTHORIZED", true},
		{"unknown entity id", "/entity/token/generate", `{"id":"zz","secret":"nope"}`, "", 401, "UNAUTHORIZED", false},
		{"non-string id", "/entity/token/generate", `{"id":5,"secret":"nope"}`, "", 400, "BAD_REQUEST", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.tsPost(tc.path, tc.body, tc.token)
			if r.status != tc.status || r.json["errorCode"] != tc.code || r.json["errorMsg"] == "" {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if tc.echo {
				wantEnvelope(t, r)
			}
		})
	}
	t.Run("methods and unknown routes", func(t *testing.T) {
		if r := g.get("/entity/secret/read", admin); r.status != 405 || r.header.Get("Allow") != "POST" {
			t.Fatalf("GET read: %d", r.status)
		}
		for _, p := range []string{"/entity/nope", "/user/x"} {
			if r := g.tsPost(p, "{}", admin); r.status != 404 {
				t.Fatalf("%s: %d %s", p, r.status, r.body)
			}
		}
	})
	t.Run("no secret in the logs", func(t *testing.T) {
		if logs := g.waitLog("entity secret reset"); strings.Contains(logs, first) {
			t.Fatal("the log holds an entity secret")
		}
	})
}

func TestEntitySecretGraceThroughTheRoutes(t *testing.T) {
	g := startGateway(t, "entity aa-1\n\t\tsecret_grace 1h")
	admin := g.adminToken()
	old := g.tsPost("/entity/secret/read", seedBody("aa-1", ""), admin).json["secret"].(string)
	fresh := g.tsPost("/entity/secret/reset", seedBody("aa-1", ""), admin).json["secret"].(string)
	for _, s := range []string{old, fresh} {
		if r := g.tsPost("/entity/token/generate", fmt.Sprintf(`{"id":"aa-1","secret":%q}`, s), ""); r.status != 200 {
			t.Fatalf("within grace: %d %s", r.status, r.body)
		}
	}
}
