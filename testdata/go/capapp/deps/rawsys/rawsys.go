// Package rawsys talks to the kernel directly with syscall.Syscall and loads
// Go plugins: the two capabilities (`syscall`, `plugin`) that bypass the
// standard library's usual entry points.
package rawsys

import (
	"plugin"
	"syscall"
)

// Getpid asks the kernel for the process id with a raw system call.
//
//go:noinline
func Getpid() int {
	r, _, _ := syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
	return int(r)
}

// Load opens a Go plugin (only works in cgo builds; elsewhere an error).
//
//go:noinline
func Load(path string) error {
	_, err := plugin.Open(path)
	return err
}
