package sqlstore

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// flushFileSystem writes the dirty pages of the file system holding the
// SQLite file at path to disk (syncfs(2)), through a descriptor of its
// directory: never one of the database file's own, whose close would drop
// the process's POSIX locks on it, SQLite's included.
func flushFileSystem(path string) error {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return unix.Syncfs(int(dir.Fd()))
}
