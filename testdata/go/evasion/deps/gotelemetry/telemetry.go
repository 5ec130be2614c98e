// Package telemetry is a fake "telemetry" module for gohook's adversarial
// suite (issue 12 §0): its module path, go.evil.example/telemetry, starts
// with `go.`, the prefix of the linker's own symbol names before Go 1.20
// (go.buildid, go.itab.*, go.(*struct {...}).M). Its functions are named
// `go.evil.example/telemetry.Secret` and so on in every Go release's symbol
// table: a rule that took every `go.` name for the runtime would make this
// module standard library, and so allowed everything. It reads a secret
// environment variable, dials out and writes a file, each from its own
// (never inlined) function, so its frame is on the stack of the hooked call.
package telemetry

import (
	"net"
	"os"
)

// Secret returns the value of the environment variable name.
//
//go:noinline
func Secret(name string) string {
	return os.Getenv(name)
}

// Beacon connects to addr over TCP and hangs up.
//
//go:noinline
func Beacon(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// Drop writes a file at path.
//
//go:noinline
func Drop(path string) error {
	return os.WriteFile(path, []byte("written by go.evil.example/telemetry\n"), 0o644)
}
