package issuer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Default lifetimes of a sign-in (SSO) session.
const (
	DefaultSessionTTL    = 12 * time.Hour     // idle: slides with use
	DefaultSessionMaxTTL = 7 * 24 * time.Hour // absolute
)

const sessionPrefix = "tgs_"

// SignIn checks a person's user name and password for the login page:
// a gateway user (Caddyfile or store) first, else a user of a user table,
// throttled and hash-budgeted like every sign-in, and failing alike
// (ErrInvalidCredentials) for an unknown name and a wrong password.
//
// Every directory is asked whoever holds the name, so the queries a name
// costs tell nothing; an unknown name costs a check of the costliest kind
// it could have been. A table that cannot answer is an outage for names
// no one else holds, never an unknown name.
func (i *Issuer) SignIn(ctx context.Context, username, password string) (Principal, error) {
	_, err := i.lookupUser(ctx, username)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Principal{}, err
	}
	gateway := err == nil
	found, kinds := "", []PrincipalKind{KindUser}
	var row User
	var outage error
	for _, name := range i.tableNames {
		kinds = append(kinds, TableKind(name))
		u, terr := i.cfg.Directories[name].LookupUser(ctx, username)
		switch {
		case terr == nil && found == "":
			found, row = name, u
		case terr != nil && !errors.Is(terr, ErrNotFound) && outage == nil:
			outage = fmt.Errorf("looking up %q in user table %s: %w", username, name, terr)
		}
	}
	switch {
	case gateway:
		u, err := i.AuthenticateUser(ctx, username, password)
		return UserPrincipal(u), err
	case found != "":
		u, err := i.authenticateTable(ctx, found, username, password, func() (User, error) { return row, nil })
		return DirectoryPrincipal(found, u), err
	case outage != nil:
		return Principal{}, outage
	}
	account := userAccount(username)
	if err := i.allow(ctx, account); err != nil {
		return Principal{}, err
	}
	_, err = i.authenticateWith(ctx, i.cost.costliest(kinds), func() (User, error) { return User{}, ErrNotFound }, password)
	if errors.Is(err, ErrInvalidCredentials) {
		i.core.Emit(ctx, Event{Kind: EventLoginFailed, NameKind: "user", Name: username})
	}
	i.settle(ctx, account, err)
	return Principal{}, err
}

// StartSession begins a sign-in session for p, authenticated by the
// methods amr (RFC 8176), and returns its id, the cookie's value. Only the
// id's hash is stored; a new id at every sign-in (no fixation).
func (i *Issuer) StartSession(ctx context.Context, p Principal, amr []string) (string, Session, error) {
	now := i.core.Stamp()
	id, err := NewSecret(sessionPrefix)
	if err != nil {
		return "", Session{}, err
	}
	s := Session{Hash: codeKey(id), Subject: p.Subject, Kind: p.Kind, Principal: p.Name, AuthTime: now, AMR: amr,
		IdleUntil: now.Add(i.sessionTTL()), ExpiresAt: now.Add(i.sessionMaxTTL())}
	if s.IdleUntil.After(s.ExpiresAt) {
		s.IdleUntil = s.ExpiresAt
	}
	if err := i.sessionStore.CreateSession(ctx, s); err != nil {
		return "", Session{}, fmt.Errorf("starting session: %w", err)
	}
	i.core.Emit(ctx, Event{Kind: EventSignedIn, Subject: p.Subject, NameKind: string(p.Kind), Name: p.Name})
	return id, s, nil
}

// LookupSession returns the live session id names, sliding its idle
// expiry once half of it has passed (so a busy session writes rarely);
// ErrNotFound when there is none, it expired, or its subject was signed
// out since.
func (i *Issuer) LookupSession(ctx context.Context, id string) (Session, error) {
	if len(id) != len(sessionPrefix)+43 {
		return Session{}, ErrNotFound
	}
	now := i.core.now()
	s, err := i.sessionStore.GetSession(ctx, codeKey(id), now)
	if err != nil {
		return Session{}, err
	}
	if i.core.revoked.subjectCutAt(s.Subject, s.AuthTime) {
		return Session{}, ErrNotFound
	}
	if ttl := i.sessionTTL(); s.IdleUntil.Sub(now) < ttl/2 && s.IdleUntil.Before(s.ExpiresAt) {
		next := now.Add(ttl)
		if next.After(s.ExpiresAt) {
			next = s.ExpiresAt
		}
		if err := i.sessionStore.TouchSession(ctx, s.Hash, next); err != nil {
			return Session{}, fmt.Errorf("extending session: %w", err)
		}
		s.IdleUntil = next
	}
	return s, nil
}

// EndSession ends the session id names (logout); an unknown id is no error.
func (i *Issuer) EndSession(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	return i.sessionStore.EndSession(ctx, codeKey(id))
}

// SessionPrincipal re-reads the principal of a session, so removed users
// and changed roles take effect.
func (i *Issuer) SessionPrincipal(ctx context.Context, s Session) (Principal, error) {
	p, err := i.refreshPrincipal(ctx, RefreshRecord{Kind: s.Kind, Principal: s.Principal, Subject: s.Subject})
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return p, nil
}

func (i *Issuer) sessionTTL() time.Duration {
	if i.cfg.SessionTTL > 0 {
		return i.cfg.SessionTTL
	}
	return DefaultSessionTTL
}

func (i *Issuer) sessionMaxTTL() time.Duration {
	if i.cfg.SessionMaxTTL > 0 {
		return i.cfg.SessionMaxTTL
	}
	return DefaultSessionMaxTTL
}

// HasConsent reports whether subject let clientID have every one of scopes.
func (i *Issuer) HasConsent(ctx context.Context, subject, clientID string, scopes []string) (bool, error) {
	c, err := i.consentStore.GetConsent(ctx, subject, clientID)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading consent: %w", err)
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false, nil
		}
	}
	return true, nil
}

// GrantConsent records that subject lets clientID have scopes, on top of
// what it let it have before.
func (i *Issuer) GrantConsent(ctx context.Context, subject, clientID string, scopes []string) error {
	c, err := i.consentStore.GetConsent(ctx, subject, clientID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("reading consent: %w", err)
	}
	all := slices.Clone(c.Scopes)
	for _, s := range scopes {
		if !slices.Contains(all, s) {
			all = append(all, s)
		}
	}
	return i.consentStore.PutConsent(ctx, Consent{Subject: subject, ClientID: clientID, Scopes: all, GrantedAt: i.core.now()})
}
