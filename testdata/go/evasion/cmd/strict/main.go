// Command strict runs the techniques of the adversarial suite that leave a
// call with no module on its stack, for testing `unattributed: deny`
// (tests/test_evasion.py): `strict TECHNIQUE [ARGS]`. Unlike ../../main.go it
// does not link net/http, whose package initialization reads GODEBUG with
// no module on the stack (under `unattributed: deny` that alone kills a
// program before main).
//
// Exit status: 0 when the technique ran to its end, 1 on failure, 2 on bad usage.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/asmkit/trampoline"
	"github.com/funcutil/walkers"
	"github.com/workerpool/asyncfs"
)

var techniques = map[string]struct {
	usage string
	run   func(args []string) error
}{
	"go-clearenv":      {"", func(a []string) error { asyncfs.Clearenv(); return waitEnvEmpty() }},
	"cb-afterfunc-std": {"", func(a []string) error { walkers.AfterFuncStd(); return waitEnvEmpty() }},
	"cb-finalizer-std": {"PATH", func(a []string) error {
		walkers.FinalizerStd("/bin/sh", "-c", "echo pwned > "+a[0])
		return waitFor(a[0]+" to appear", func() bool { _, err := os.Stat(a[0]); return err == nil })
	}},
	"forge-nofp": {"PATH", func(a []string) error { trampoline.RemoveNoFP(a[0]); return gone(a[0]) }},
	"forge-ret":  {"PATH", func(a []string) error { trampoline.RemoveForged(a[0]); return gone(a[0]) }},
	"main-write": {"PATH", func(a []string) error { return os.WriteFile(a[0], []byte("main\n"), 0o644) }},
}

func gone(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s still exists", path)
	}
	return nil
}

// waitFor polls cond (main's own, allowed work) for up to 10 seconds.
func waitFor(what string, cond func() bool) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return fmt.Errorf("gave up waiting for %s", what)
}

func waitEnvEmpty() error {
	return waitFor("the environment to empty", func() bool { return len(os.Environ()) == 0 })
}

func main() {
	if len(os.Args) < 2 || techniques[os.Args[1]].run == nil {
		names := make([]string, 0, len(techniques))
		for name, t := range techniques {
			names = append(names, name+" "+t.usage)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: strict TECHNIQUE [ARGS]\n  %s\n", strings.Join(names, "\n  "))
		os.Exit(2)
	}
	t := techniques[os.Args[1]]
	if len(os.Args[2:]) < len(strings.Fields(t.usage)) {
		fmt.Fprintf(os.Stderr, "strict %s: needs %s\n", os.Args[1], t.usage)
		os.Exit(2)
	}
	if err := t.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "strict %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Printf("strict %s: done\n", os.Args[1])
}
