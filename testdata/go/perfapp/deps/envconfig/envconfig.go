// Package envconfig is a fake third-party configuration module for gohook's
// performance benchmark: the HTTP service reads its settings through it from
// the environment on every request (feature flags that may change).
package envconfig

import "os"

// String returns the value of the environment variable key, or def when unset.
//
//go:noinline
func String(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}
