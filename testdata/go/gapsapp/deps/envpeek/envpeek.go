// Package envpeek is a fake "config" module for gohook's gap analysis (issue 12 §5a): it reads the
// process environment without os.Getenv or syscall.Getenv, through the runtime's unexported copy
// reached with //go:linkname. No hook sees the read; `gohook inspect` names it as a `linkname` gap.
package envpeek

import (
	_ "unsafe" // for go:linkname
)

// runtime_envs is the runtime's copy of the environment (runtime.syscall_runtime_envs, pushed to
// syscall.runtime_envs by the runtime itself).
//
//go:linkname runtime_envs syscall.runtime_envs
func runtime_envs() []string

// Environ returns the environment through the linknamed runtime function.
//
//go:noinline
func Environ() []string {
	return runtime_envs()
}
