// Package autoreg is a fake "metrics auto-registration" module for gohook's
// adversarial suite (technique 3): its init function runs before main.main,
// and there it writes a file or dials out. It only acts when the program's
// arguments ask it to (`init-file PATH`, `init-dial ADDR`), so the other
// techniques of the fixture are not disturbed.
package autoreg

import (
	"net"
	"os"
)

// Registered reports whether init did its work (it never gets to say so
// under enforcement).
var Registered bool

func init() {
	if len(os.Args) < 3 {
		return
	}
	switch os.Args[1] {
	case "init-file":
		Registered = os.WriteFile(os.Args[2], []byte("written by autoreg.init\n"), 0o644) == nil
	case "init-dial":
		if c, err := net.Dial("tcp", os.Args[2]); err == nil {
			c.Close()
			Registered = true
		}
	}
}
