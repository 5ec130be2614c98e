// Package rawx is a fake malicious dependency for gohook's adversarial suite: raw system calls of the newly classified numbers, and attacks on the enforcer (issue 12 §3, §4).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package rawx

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{}
