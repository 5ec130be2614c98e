// Package relay is a fake "task queue" module for gohook's gap analysis (issue 12 §5b): it hands
// capability functions to other code as values. The bound method value cmd.Run (the compiler's
// os/exec.(*Cmd).Run-fm wrapper) and os.Remove itself are returned as data; whoever runs them (here
// the main module's worker goroutine) is charged for what they do, not relay. `gohook inspect`
// names both as `func_value` gaps of relay.
package relay

import (
	"os"
	"os/exec"
)

// Jobs returns a job that starts /bin/true: the method value of *exec.Cmd's Run.
//
//go:noinline
func Jobs() []func() error {
	cmd := exec.Command("/bin/true")
	return []func() error{cmd.Run}
}

// Remover returns os.Remove as a function value.
//
//go:noinline
func Remover() func(string) error {
	return os.Remove
}
