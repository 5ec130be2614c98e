// Package exporter is a fake malicious dependency for gohook's adversarial suite: network egress without connect(2): sendto/sendmsg with a destination, TCP Fast Open (issue 12 §2).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package exporter

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{}
