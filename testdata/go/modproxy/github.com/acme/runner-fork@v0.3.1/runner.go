// Package runner is a fake third-party module for gohook fixtures: it
// executes another program through os/exec.
//
// This copy is the fork github.com/acme/runner-fork v0.3.1, which the
// capapp module uses in place of github.com/acme/runner v0.3.0 through a
// module replace directive; as forks do, its go.mod keeps the original
// module path.
package runner

import "os/exec"

// True runs /bin/true and waits for it.
//
//go:noinline
func True() error {
	return exec.Command("/bin/true").Run()
}
