package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/issuer"
)

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
