// Package lib is a fake third-party module for gohook's BPF tests and
// benchmark: it calls a hooked standard-library function in a loop, at a
// chosen stack depth, so the probe's cost per call can be measured.
package lib

import (
	"os"
	"time"
)

// Loop calls os.Getenv(name) n times at a stack depth of depth extra frames
// and returns the elapsed time.
//
//go:noinline
func Loop(name string, n, depth int) time.Duration {
	if depth > 0 {
		return Loop(name, n, depth-1)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		os.Getenv(name)
	}
	return time.Since(start)
}
