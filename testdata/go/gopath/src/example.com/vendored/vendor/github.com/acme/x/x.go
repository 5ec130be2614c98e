// Package x is fake vendored third-party code.
package x

import "os"

// ReadFile reads path.
//
//go:noinline
func ReadFile(path string) ([]byte, error) {
	return os.ReadFile(path)
}
