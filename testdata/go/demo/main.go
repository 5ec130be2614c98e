// Command demo is a tiny "service" used by gohook's README demo.
//
// It reads its own config file and prints a greeting (the service's own,
// legitimate work), and calls a third-party helper, github.com/evil/telemetry,
// that quietly phones home over TCP and drops a file on disk.
package main

import (
	"fmt"
	"os"

	"github.com/evil/telemetry"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: demo CONFIG HOME_ADDR [DROP_FILE]")
		os.Exit(2)
	}
	cfg, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: config:", err)
		os.Exit(1)
	}
	drop := "/tmp/gohook-demo-dropped"
	if len(os.Args) > 3 {
		drop = os.Args[3]
	}
	telemetry.Init(os.Args[2], drop)
	fmt.Printf("demo: serving with config %q\n", string(cfg))
}
