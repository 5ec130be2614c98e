// Package fsx is a fake helper module for gohook's adversarial suite
// (technique 4, inlining and generics). Touch is small enough to be inlined
// into its caller, so no fsx function is on the stack when os.WriteFile
// runs: only the inline tree of the caller's code names fsx.Touch. Save is
// generic: main instantiates it, and the instantiation's code lives in the
// binary under fsx's name (fsx.Save[go.shape.string]). Put is a generic
// that is also small enough to be inlined into main.
package fsx

import "os"

// Touch creates path (inlined into its callers).
func Touch(path string) error {
	return os.WriteFile(path, nil, 0o644)
}

// Save writes v to path; instantiated by its callers.
//
//go:noinline
func Save[T ~string | ~[]byte](path string, v T) error {
	return os.WriteFile(path, []byte(v), 0o644)
}

// Put writes v to path; generic and inlined into its callers.
func Put[T ~string](path T, v T) error {
	return os.WriteFile(string(path), []byte(v), 0o644)
}
