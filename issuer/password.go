package issuer

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters for new password hashes (RFC 9106 second recommended
// option, scaled to 64 MiB so a login costs tens of milliseconds, not seconds).
const (
	argonTime    = 2
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	argonSaltLen = 16
)

// maxPasswordLen bounds the work an attacker can make us do per request.
const maxPasswordLen = 1024

// ErrBadHash says a stored password hash is in no format this package reads.
var ErrBadHash = errors.New("unsupported password hash format")

// HashPassword returns an argon2id PHC string for password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckHashFormat reports whether hash is an argon2id PHC string or a bcrypt
// hash, so configuration errors surface at load time rather than at login.
func CheckHashFormat(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, _, _, err := parseArgon2id(hash)
		return err
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("bcrypt hash: %w", err)
		}
		return nil
	}
	return ErrBadHash
}

// VerifyPassword checks password against an argon2id PHC string or a bcrypt
// hash (as `caddy hash-password` makes them). Comparison is constant-time.
func VerifyPassword(hash, password string) (bool, error) {
	if len(password) > maxPasswordLen {
		return false, nil
	}
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
		return subtle.ConstantTimeCompare(got, key) == 1, nil
	case strings.HasPrefix(hash, "$2"):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("bcrypt: %w", err)
		}
		return true, nil
	}
	return false, ErrBadHash
}

// PasswordLimiter bounds how many password hashes are checked at once:
// each argon2id check takes 64 MiB, so unbounded parallel logins (even for
// unknown users, which cost a dummy check) could exhaust memory. Callers
// wait for a slot, or give up when their request is cancelled.
type PasswordLimiter struct{ slots chan struct{} }

// NewPasswordLimiter allows n checks at once (at least 1).
func NewPasswordLimiter(n int) *PasswordLimiter {
	return &PasswordLimiter{slots: make(chan struct{}, max(n, 1))}
}

// Verify is VerifyPassword within the limit.
func (l *PasswordLimiter) Verify(ctx context.Context, hash, password string) (bool, error) {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("waiting to check a password: %w", ctx.Err())
	}
	defer func() { <-l.slots }()
	return VerifyPassword(hash, password)
}

type argonParams struct {
	time, memory uint32
	threads      uint8
}

func parseArgon2id(hash string) (argonParams, []byte, []byte, error) {
	// $argon2id$v=19$m=65536,t=2,p=2$<salt>$<key>
	parts := strings.Split(hash, "$")
	var p argonParams
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, ErrBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("argon2id version: %w", ErrBadHash)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, nil, nil, fmt.Errorf("argon2id parameters: %w", ErrBadHash)
	}
	// Refuse parameters that would let a stored hash exhaust memory or CPU.
	if p.memory == 0 || p.memory > 1<<20 || p.time == 0 || p.time > 16 || p.threads == 0 {
		return p, nil, nil, fmt.Errorf("argon2id parameters out of range: %w", ErrBadHash)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("argon2id salt: %w", ErrBadHash)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, fmt.Errorf("argon2id key: %w", ErrBadHash)
	}
	return p, salt, key, nil
}
