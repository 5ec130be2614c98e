// Package shellcmd is a fake "devops helper" module for gohook's adversarial
// suite (technique 7, exec): it runs a shell. The exec capability is checked
// when the program is started; what the shell then does happens in another
// process, outside gohook's enforcement.
package shellcmd

import "os/exec"

// Sh runs /bin/sh -c script.
//
//go:noinline
func Sh(script string) error {
	return exec.Command("/bin/sh", "-c", script).Run()
}
