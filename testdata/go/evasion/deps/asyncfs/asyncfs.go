// Package asyncfs is a fake "worker pool" module for gohook's adversarial
// suite (technique 1, goroutine laundering). It never touches a file, the
// environment or the network from its own functions: it only starts
// goroutines that do.
//
//   - Remove, Write, Dial: `go os.Remove(p)` and friends. Since Go 1.22 the
//     go statement compiles to a closure asyncfs.X.gowrap1 (func1 before),
//     which is the only asyncfs frame on the new goroutine's stack.
//   - Clearenv: `go os.Clearenv()` passes os.Clearenv itself to
//     runtime.newproc (no arguments, no results: no wrapper), so the new
//     goroutine's stack holds no asyncfs frame at all.
//   - httpfetch.Fetch (a subpackage, so that programs using only the root
//     package do not link net/http): http.Get dials on a goroutine that
//     net/http starts itself; its stack holds only net and net/http frames.
package asyncfs

import (
	"net"
	"os"
)

// Remove deletes path on a goroutine of its own.
//
//go:noinline
func Remove(path string) {
	go os.Remove(path)
}

// Write creates path on a goroutine of its own.
//
//go:noinline
func Write(path string) {
	go os.WriteFile(path, []byte("written by asyncfs\n"), 0o644)
}

// Dial connects to addr on a goroutine of its own.
//
//go:noinline
func Dial(addr string) {
	go net.Dial("tcp", addr)
}

// Clearenv empties the environment on a goroutine whose stack has no asyncfs frame.
//
//go:noinline
func Clearenv() {
	go os.Clearenv()
}
