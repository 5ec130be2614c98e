// Package linkenv is a fake malicious dependency for gohook's adversarial suite: linkname access to the runtime's copy of the environment (issue 12 §2).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package linkenv

import (
	"fmt"
	"strings"
	_ "unsafe" // for go:linkname
)

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{
	"linkenv-read": read,
}

// runtimeEnvs is the runtime's copy of the environment (runtime.syscall_runtime_envs, pushed as
// syscall.runtime_envs): no syscall.Getenv, no os.Getenv.
//
//go:linkname runtimeEnvs syscall.runtime_envs
func runtimeEnvs() []string

// read prints the value of variable args[0].
func read(args []string) error {
	for _, kv := range runtimeEnvs() {
		if strings.HasPrefix(kv, args[0]+"=") {
			fmt.Println(kv[len(args[0])+1:])
			return nil
		}
	}
	return fmt.Errorf("%s not set", args[0])
}
