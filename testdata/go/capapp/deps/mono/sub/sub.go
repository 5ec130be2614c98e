// Package sub is the nested module github.com/acme/mono/sub.
package sub

import "os"

// OpenFile opens path read-only with os.OpenFile.
//
//go:noinline
func OpenFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY, 0)
}
