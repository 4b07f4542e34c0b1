package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// What browser sign-in keeps: authorization codes, single sign-on
// sessions and consent decisions.

const codeCols = `SELECT hash, client_id, redirect_uri, challenge, scope, nonce, session, family, subject, kind,
	principal, auth_time, amr, expires_at, used_at FROM tg_codes`

func scanCode(row interface{ Scan(...any) error }) (issuer.AuthCode, error) {
	var c issuer.AuthCode
	var kind, amr string
	var authTime, expires, used int64
	err := row.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.Challenge, &c.Scope, &c.Nonce, &c.Session, &c.Family,
		&c.Subject, &kind, &c.Principal, &authTime, &amr, &expires, &used)
	c.Kind, c.AMR = issuer.PrincipalKind(kind), splitList(amr)
	c.AuthTime, c.ExpiresAt, c.UsedAt = fromNS(authTime), fromNS(expires), fromNS(used)
	return c, err
}

// PutCode implements issuer.AuthCodeStore.
func (s *Store) PutCode(ctx context.Context, c issuer.AuthCode) error {
	_, err := s.exec(ctx, `INSERT INTO tg_codes (hash, client_id, redirect_uri, challenge, scope, nonce, session, family,
		subject, kind, principal, auth_time, amr, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
		c.Hash, c.ClientID, c.RedirectURI, c.Challenge, c.Scope, c.Nonce, c.Session, c.Family, c.Subject, string(c.Kind),
		c.Principal, ns(c.AuthTime), joinList(c.AMR), ns(c.ExpiresAt))
	if err != nil {
		return errorf("storing authorization code: %w", err)
	}
	return nil
}

// RedeemCode implements issuer.AuthCodeStore: the UPDATE that marks the
// code used decides between concurrent redemptions.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time) (issuer.AuthCode, error) {
	res, err := s.exec(ctx, `UPDATE tg_codes SET used_at = ? WHERE hash = ? AND used_at = 0 AND expires_at > ?`,
		ns(now), hash, ns(now))
	if err != nil {
		return issuer.AuthCode{}, errorf("redeeming authorization code: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return issuer.AuthCode{}, errorf("redeeming authorization code: %w", err)
	}
	c, err := scanCode(s.row(ctx, codeCols+` WHERE hash = ?`, hash))
	if err != nil {
		return issuer.AuthCode{}, notFound(err, "authorization code")
	}
	switch {
	case n == 1:
		return c, nil
	case !c.UsedAt.IsZero():
		return c, issuer.ErrCodeReused
	}
	return issuer.AuthCode{}, issuer.ErrNotFound // expired
}

const sessionCols = `SELECT hash, subject, kind, principal, auth_time, amr, idle_until, expires_at FROM tg_sessions`

func scanSession(row interface{ Scan(...any) error }) (issuer.Session, error) {
	var ss issuer.Session
	var kind, amr string
	var authTime, idle, expires int64
	err := row.Scan(&ss.Hash, &ss.Subject, &kind, &ss.Principal, &authTime, &amr, &idle, &expires)
	ss.Kind, ss.AMR = issuer.PrincipalKind(kind), splitList(amr)
	ss.AuthTime, ss.IdleUntil, ss.ExpiresAt = fromNS(authTime), fromNS(idle), fromNS(expires)
	return ss, err
}

// CreateSession implements issuer.SessionStore.
func (s *Store) CreateSession(ctx context.Context, ss issuer.Session) error {
	_, err := s.exec(ctx, `INSERT INTO tg_sessions (hash, subject, kind, principal, auth_time, amr, idle_until, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ss.Hash, ss.Subject, string(ss.Kind), ss.Principal, ns(ss.AuthTime),
		joinList(ss.AMR), ns(ss.IdleUntil), ns(ss.ExpiresAt))
	if err != nil {
		return errorf("storing session: %w", err)
	}
	return nil
}

// GetSession implements issuer.SessionStore.
func (s *Store) GetSession(ctx context.Context, hash string, now time.Time) (issuer.Session, error) {
	ss, err := scanSession(s.row(ctx, sessionCols+` WHERE hash = ? AND idle_until > ? AND expires_at > ?`,
		hash, ns(now), ns(now)))
	if err != nil {
		return issuer.Session{}, notFound(err, "session")
	}
	return ss, nil
}

// TouchSession implements issuer.SessionStore.
func (s *Store) TouchSession(ctx context.Context, hash string, idleUntil time.Time) error {
	if _, err := s.exec(ctx, `UPDATE tg_sessions SET idle_until = CASE WHEN ? < expires_at THEN ? ELSE expires_at END
		WHERE hash = ?`, ns(idleUntil), ns(idleUntil), hash); err != nil {
		return errorf("extending session: %w", err)
	}
	return nil
}

// EndSession implements issuer.SessionStore.
func (s *Store) EndSession(ctx context.Context, hash string) error {
	if _, err := s.exec(ctx, `DELETE FROM tg_sessions WHERE hash = ?`, hash); err != nil {
		return errorf("ending session: %w", err)
	}
	return nil
}

// EndSubjectSessions implements issuer.SessionStore.
func (s *Store) EndSubjectSessions(ctx context.Context, subject string, at time.Time) error {
	if _, err := s.exec(ctx, `DELETE FROM tg_sessions WHERE subject = ? AND auth_time <= ?`, subject, ns(at)); err != nil {
		return errorf("ending sessions of %s: %w", subject, err)
	}
	return nil
}

const consentCols = `SELECT subject, client_id, scopes, granted_at FROM tg_consents`

func scanConsent(row interface{ Scan(...any) error }) (issuer.Consent, error) {
	var c issuer.Consent
	var scopes string
	var at int64
	err := row.Scan(&c.Subject, &c.ClientID, &scopes, &at)
	c.Scopes, c.GrantedAt = splitList(scopes), fromNS(at)
	return c, err
}

// PutConsent implements issuer.ConsentStore.
func (s *Store) PutConsent(ctx context.Context, c issuer.Consent) error {
	_, err := s.exec(ctx, `INSERT INTO tg_consents (subject, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		c.Subject, c.ClientID, joinList(c.Scopes), ns(c.GrantedAt))
	if err != nil {
		return errorf("storing consent: %w", err)
	}
	return nil
}

// GetConsent implements issuer.ConsentStore.
func (s *Store) GetConsent(ctx context.Context, subject, clientID string) (issuer.Consent, error) {
	c, err := scanConsent(s.row(ctx, consentCols+` WHERE subject = ? AND client_id = ?`, subject, clientID))
	if err != nil {
		return issuer.Consent{}, notFound(err, "consent")
	}
	return c, nil
}

// ListConsents implements issuer.ConsentStore.
func (s *Store) ListConsents(ctx context.Context, subject string) ([]issuer.Consent, error) {
	return list(ctx, s, consentCols+` WHERE subject = ? ORDER BY client_id`, scanConsent, subject)
}

// DeleteConsent implements issuer.ConsentStore.
func (s *Store) DeleteConsent(ctx context.Context, subject, clientID string) (int, error) {
	q, args := `DELETE FROM tg_consents WHERE subject = ?`, []any{subject}
	if clientID != "" {
		q, args = q+` AND client_id = ?`, append(args, clientID)
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, errorf("forgetting consent: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errorf("forgetting consent: %w", err)
	}
	return int(n), nil
}

// purgeBrowser drops codes and sessions that expired.
func (s *Store) purgeBrowser(ctx context.Context, now time.Time) error {
	_, err1 := s.exec(ctx, `DELETE FROM tg_codes WHERE expires_at < ?`, ns(now))
	_, err2 := s.exec(ctx, `DELETE FROM tg_sessions WHERE expires_at < ? OR idle_until < ?`, ns(now), ns(now))
	if err := errors.Join(err1, err2); err != nil {
		return errorf("purging codes and sessions: %w", err)
	}
	return nil
}
