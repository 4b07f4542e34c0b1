package issuer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// HashParams are the argon2id parameters of new password hashes.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// OWASP's recommended argon2id parameters (Password Storage Cheat Sheet):
// m = 19 MiB, t = 2, p = 1. A check costs about 20-40 ms of one CPU.
const (
	DefaultArgonMemory  = 19 * 1024
	DefaultArgonTime    = 2
	DefaultArgonThreads = 1
	argonKeyLen         = 32
	argonSaltLen        = 16
)

// DefaultHashParams returns OWASP's argon2id parameters.
func DefaultHashParams() HashParams {
	return HashParams{Memory: DefaultArgonMemory, Time: DefaultArgonTime, Threads: DefaultArgonThreads}
}

// Check refuses parameters a stored hash may not have either.
func (p HashParams) Check() error {
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemory || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
		return fmt.Errorf("argon2id parameters m=%d,t=%d,p=%d out of range (m ≤ %d KiB, t ≤ 16)", p.Memory, p.Time, p.Threads, maxArgonMemory)
	}
	return nil
}

// maxArgonMemory (KiB) bounds what one stored hash can make a check take.
const maxArgonMemory = 1 << 20

// maxPasswordLen bounds the work an attacker can make us do per request.
const maxPasswordLen = 1024

// ErrBadHash says a stored password hash is in no format this package reads.
var ErrBadHash = errors.New("unsupported password hash format")

// HashPassword returns an argon2id PHC string for password, with
// DefaultHashParams.
func HashPassword(password string) (string, error) {
	return HashPasswordWith(DefaultHashParams(), password)
}

// HashPasswordWith returns an argon2id PHC string for password with p.
func HashPasswordWith(p HashParams, password string) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	return argonHash(p, argonSaltLen, argonKeyLen, password)
}

func argonHash(p HashParams, saltLen, keyLen int, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(keyLen))
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// HashClass is what sets the cost of checking hash: the algorithm and its
// parameters ("$argon2id$v=19$m=19456,t=2,p=1$16$32", "$2a$10$"), or ""
// for a hash in no format VerifyPassword reads.
func HashClass(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return ""
		}
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%d$%d", argon2.Version, p.Memory, p.Time, p.Threads, len(salt), len(key))
	case strings.HasPrefix(hash, "$2"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil || len(hash) < 4 {
			return ""
		}
		return fmt.Sprintf("%s%02d$", hash[:4], cost)
	}
	return ""
}

// DummyHash returns the hash of a random password in the class of
// HashClass: checking a password against it costs what checking one
// against a real hash of that class costs.
func DummyHash(class string) (string, error) {
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return "", fmt.Errorf("reading random password: %w", err)
	}
	random := base64.RawStdEncoding.EncodeToString(pw)
	var p HashParams
	var saltLen, keyLen int
	if _, err := fmt.Sscanf(class, "$argon2id$v=19$m=%d,t=%d,p=%d$%d$%d", &p.Memory, &p.Time, &p.Threads, &saltLen, &keyLen); err == nil {
		if err := p.Check(); err != nil {
			return "", err
		}
		return argonHash(p, saltLen, keyLen, random)
	}
	var cost int
	if len(class) == 7 && strings.HasPrefix(class, "$2") {
		if _, err := fmt.Sscanf(class[4:], "%02d$", &cost); err == nil {
			h, err := bcrypt.GenerateFromPassword([]byte(random), cost)
			if err != nil {
				return "", fmt.Errorf("bcrypt dummy: %w", err)
			}
			return class[:4] + string(h[4:]), nil
		}
	}
	return HashPassword(random)
}

// LooksLikeHash reports whether v is written as an argon2id or bcrypt hash
// (whether or not it is a valid one).
func LooksLikeHash(v string) bool {
	return strings.HasPrefix(v, "$argon2id$") || strings.HasPrefix(v, "$2a$") || strings.HasPrefix(v, "$2b$") || strings.HasPrefix(v, "$2y$")
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
		got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
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

func parseArgon2id(hash string) (HashParams, []byte, []byte, error) {
	// $argon2id$v=19$m=65536,t=2,p=2$<salt>$<key>
	parts := strings.Split(hash, "$")
	var p HashParams
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, ErrBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("argon2id version: %w", ErrBadHash)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("argon2id parameters: %w", ErrBadHash)
	}
	// Refuse parameters that would let a stored hash exhaust memory or CPU.
	if p.Check() != nil {
		return p, nil, nil, fmt.Errorf("argon2id parameters out of range: %w", ErrBadHash)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("argon2id salt: %w", ErrBadHash)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, fmt.Errorf("argon2id key: %w", ErrBadHash)
	}
	return p, salt, key, nil
}
