// Package visit is a fake third-party module for gohook's attach tests. Its
// File and ByEnv are callbacks that the main module hands to the standard
// library (filepath.WalkDir, sort.Slice): when they make a hooked call, the
// only non-std frame nearer than main is this module's.
package visit

import (
	"io"
	"io/fs"
	"os"
)

// Files counts the regular files File has read.
var Files int

// File is a filepath.WalkDir callback: it reads every regular file itself.
//
//go:noinline
func File(path string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	if !d.Type().IsRegular() {
		return nil
	}
	if _, err := os.ReadFile(path); err != nil {
		return err
	}
	Files++
	return nil
}

// ByEnv returns a sort.Slice less function over names that orders them by
// the values of the environment variables they name.
func ByEnv(names []string) func(i, j int) bool {
	return func(i, j int) bool {
		return os.Getenv(names[i]) < os.Getenv(names[j])
	}
}

// ReadSmall opens path, reads up to 64 bytes and closes it.
//
//go:noinline
func ReadSmall(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var buf [64]byte
	n, err := f.Read(buf[:])
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// Create creates (or truncates) path and writes data to it.
//
//go:noinline
func Create(path string, data []byte) error {
	return os.WriteFile(path, data, 0o600)
}
