package issuer

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// A refresh token is refreshPrefix and the base64url of its issue time
// (6 bytes, Unix milliseconds, big-endian) followed by 32 random bytes.
// Its store key (RefreshRecord.Hash) begins with that time in 12 hex
// digits, followed by the first 52 hex digits (208 bits) of the token's
// SHA-256. Why: a store's index on random hashes puts every new token,
// every lookup and every pruned row on a random page of an index of
// millions; time-first keys put new tokens at the index's end, keep the
// recent ones a chain looks up on a few hot pages, and let pruning
// (tokens expire in the order they were issued) empty its start.
//
// The issue time is not secret: the client that holds the token received
// it then. Tokens made before this format (32 random bytes) keep their
// key, the SHA-256 of the token.
const refreshPrefix = "tgr_"

const (
	refreshStampLen  = 6                       // bytes of issue time
	refreshStampB64  = 8                       // base64url digits that hold them exactly
	refreshTokenLen  = len(refreshPrefix) + 51 // 51 base64url digits hold the 38 bytes
	refreshKeyHashHx = 64 - 2*refreshStampLen  // hex digits of SHA-256 in a key: keys stay 64 long
)

// NewRefreshToken returns a new refresh token issued at issued; its store
// key is RefreshKey's.
func NewRefreshToken(issued time.Time) (string, error) {
	var b [refreshStampLen + 32]byte
	stamp := issueStamp(issued)
	copy(b[:], stamp[:])
	if _, err := rand.Read(b[refreshStampLen:]); err != nil {
		return "", fmt.Errorf("reading random refresh token: %w", err)
	}
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// RefreshKey returns the store key of a refresh token (see refreshPrefix).
// Any string gets a key; one that is not a token this issuer made simply
// matches nothing.
func RefreshKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	if len(token) == refreshTokenLen && strings.HasPrefix(token, refreshPrefix) {
		stamp, err := base64.RawURLEncoding.DecodeString(token[len(refreshPrefix) : len(refreshPrefix)+refreshStampB64])
		if err == nil && len(stamp) == refreshStampLen { // the decoder skips newlines
			return hex.EncodeToString(stamp) + hex.EncodeToString(sum[:refreshKeyHashHx/2])
		}
	}
	return hex.EncodeToString(sum[:]) // a token of the format before
}

// issueStamp is t in Unix milliseconds, big-endian, in the 6 bytes that
// begin refresh tokens and family ids.
func issueStamp(t time.Time) [refreshStampLen]byte {
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	return [refreshStampLen]byte(ms[8-refreshStampLen:])
}

// newFamilyID returns the id of a refresh-token family begun at begun: its
// issue stamp in 12 hex digits, then 12 random bytes in base64url. Time
// first for the reason refresh keys are (see refreshPrefix): a family's
// tokens sit together in the store's family index, and families begun
// together too.
func newFamilyID(begun time.Time) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random family id: %w", err)
	}
	stamp := issueStamp(begun)
	return hex.EncodeToString(stamp[:]) + base64.RawURLEncoding.EncodeToString(b[:]), nil
}
