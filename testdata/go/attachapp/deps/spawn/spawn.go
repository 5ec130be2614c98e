// Package spawn is a fake third-party module for gohook's attach tests: it
// runs a program through os/exec.
package spawn

import "os/exec"

// Run runs path without arguments and waits for it.
//
//go:noinline
func Run(path string) error {
	return exec.Command(path).Run()
}
