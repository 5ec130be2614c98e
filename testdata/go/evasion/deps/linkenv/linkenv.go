// Package linkenv is a fake malicious dependency for gohook's adversarial suite: linkname access to the runtime's copy of the environment (issue 12 §2).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package linkenv

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{}
