// Package storeconf resolves where a tokengate store is and the master key
// that seals it. The tokengate app (opening a site's store) and the CLI
// (opening the store its flags name) both resolve them here, so the two
// name the same file and seal with the same key.
package storeconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Default is the store used when none is configured: SQLite at
// tokengate/tokengate.db in Caddy's data directory.
func Default() (driver, dsn string) {
	return "sqlite", filepath.Join(caddy.AppDataDir(), "tokengate", "tokengate.db")
}

// Location is the store s configures, its DSN's placeholders expanded by
// repl; Default when s names no driver.
func Location(s *config.Store, repl *caddy.Replacer) (driver, dsn string) {
	if s == nil || s.Driver == "" {
		return Default()
	}
	return s.Driver, ResolveDSN(s.Driver, repl.ReplaceKnown(s.DSN, ""))
}

// ResolveDSN makes a relative SQLite path absolute against the working
// directory, in Caddy and in the CLI alike, so both name the same file
// when started from the same directory (and log or print the full path).
func ResolveDSN(driver, dsn string) string {
	if driver != "sqlite" || dsn == "" || dsn == ":memory:" || filepath.IsAbs(dsn) {
		return dsn
	}
	if abs, err := filepath.Abs(dsn); err == nil {
		return abs
	}
	return dsn
}

// MasterKeyFile is where the master key is generated when none is
// configured: tokengate/master.key in Caddy's data directory.
func MasterKeyFile() string {
	return filepath.Join(caddy.AppDataDir(), "tokengate", "master.key")
}

// ResolveMasterKey returns the master key Caddy and the CLI seal with:
// configured (64 hex digits or base64) when set, else the generated one in
// MasterKeyFile, created (mode 0600) if create is true. keyFile is set when
// the generated key is used. With create false and no file, the key is nil:
// a store that was never sealed is read as plain text.
func ResolveMasterKey(configured string, create bool) (mk *issuer.MasterKey, keyFile string, err error) {
	if configured != "" {
		if mk, err = issuer.ParseMasterKey(configured); err != nil {
			return nil, "", fmt.Errorf("master_key: %w (generate one with `openssl rand -hex 32`)", err)
		}
		return mk, "", nil
	}
	path := MasterKeyFile()
	if create {
		if err := createKeyFile(path); err != nil {
			return nil, "", err
		}
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading generated master key: %w", err)
	}
	if mk, err = issuer.ParseMasterKey(string(b)); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return mk, path, nil
}

// ReadKeyFile reads a master key kept in a file (as MasterKeyFile is).
func ReadKeyFile(path string) (*issuer.MasterKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading master key: %w", err)
	}
	mk, err := issuer.ParseMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mk, nil
}

// createKeyFile writes a new master key to path unless the file exists.
// The key is written to a temporary file first and linked into place, so a
// concurrent reader never sees a half-written key and the loser of a race
// uses the winner's.
func createKeyFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	key, err := issuer.NewMasterKeyString()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".master.key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("creating master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(key + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing master key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
}
