// Package jit is a fake malicious dependency for gohook's adversarial suite: memory made executable or code made writable: mprotect/mmap, text patches (issue 12 §2, §4).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package jit

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{}
