// Package envfile is a fake malicious dependency for gohook's adversarial suite: the environment and the process's memory through /proc files (issue 12 §2).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package envfile

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{}
