package issuer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// fakeDirectory is a user table that counts its lookups and can be down.
type fakeDirectory struct {
	mu      sync.Mutex
	users   map[string]issuer.User
	down    bool
	lookups int
}

func (d *fakeDirectory) LookupUser(_ context.Context, name string) (issuer.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if d.down {
		return issuer.User{}, errors.New("connection refused")
	}
	if u, ok := d.users[name]; ok {
		return u, nil
	}
	return issuer.User{}, issuer.ErrNotFound
}

func (d *fakeDirectory) calls() int { d.mu.Lock(); defer d.mu.Unlock(); return d.lookups }

// TestSignInAcrossDirectories: the login page's SignIn finds a gateway user
// or a table user, asks every directory whoever holds the name, reports a
// table that cannot answer as an outage (never as an unknown name), lets a
// gateway user in while a table is down, and checks an unknown name
// against the costliest class a table's users have shown.
func TestSignInAcrossDirectories(t *testing.T) {
	ctx := context.Background()
	cc := newCountingCore(t, &clock{t: time.Unix(1_700_000_000, 0)})
	slow := bcryptHash(t, "carol-pw", 11) // costlier than the default argon2id
	app := &fakeDirectory{users: map[string]issuer.User{"carol": {Name: "carol", ID: "7", PasswordHash: slow}}}
	other := &fakeDirectory{users: map[string]issuer.User{}}
	is := newIssuer(t, cc.Core, issuer.Config{NoThrottle: true,
		Users:       []issuer.User{{Name: "alice", PasswordHash: issuertest.Hash(t, "alice-pw")}},
		Directories: map[string]issuer.UserDirectory{"app": app, "other": other}})

	for _, tc := range []struct {
		name, user, pw string
		subject        string // "": refused
	}{
		{"a gateway user", "alice", "alice-pw", "alice"},
		{"a table user", "carol", "carol-pw", "app:7"},
		{"a gateway user's wrong password", "alice", "nope", ""},
		{"a table user's wrong password", "carol", "nope", ""},
		{"an unknown name", "nobody", "alice-pw", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := []int{app.calls(), other.calls()}
			p, err := is.SignIn(ctx, tc.user, tc.pw)
			switch {
			case tc.subject != "" && (err != nil || p.Subject != tc.subject):
				t.Fatalf("SignIn = %+v, %v; want subject %s", p, err, tc.subject)
			case tc.subject == "" && !errors.Is(err, issuer.ErrInvalidCredentials):
				t.Fatalf("SignIn = %+v, %v; want ErrInvalidCredentials", p, err)
			}
			if app.calls() != before[0]+1 || other.calls() != before[1]+1 {
				t.Fatalf("lookups app %d other %d, want one each", app.calls()-before[0], other.calls()-before[1])
			}
		})
	}
	// carol's failure showed a bcrypt user in app: an unknown name now
	// costs a check of that class.
	if _, err := is.SignIn(ctx, "nobody", "x"); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if got, want := issuer.HashClass(cc.last()), issuer.HashClass(slow); got != want {
		t.Fatalf("an unknown name was checked against a hash of class %s, want the table's %s", got, want)
	}

	other.mu.Lock()
	other.down = true
	other.mu.Unlock()
	if _, err := is.SignIn(ctx, "nobody", "x"); err == nil || errors.Is(err, issuer.ErrInvalidCredentials) || errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("an unknown name while a table is down: %v, want the outage", err)
	}
	if p, err := is.SignIn(ctx, "alice", "alice-pw"); err != nil || p.Subject != "alice" {
		t.Fatalf("a gateway user while a table is down: %+v %v", p, err)
	}
	if p, err := is.SignIn(ctx, "carol", "carol-pw"); err != nil || p.Subject != "app:7" {
		t.Fatalf("a user of the table that answers: %+v %v", p, err)
	}
}
