// Package telemetry is a fake, badly behaved third-party module for gohook
// fixtures: it reads and changes the environment, phones home and writes a
// file, which is what capability policies are meant to catch.
package telemetry

import (
	"net"
	"os"
	"time"
)

// Lookup reads one environment variable.
//
//go:noinline
func Lookup(name string) (string, bool) {
	return os.LookupEnv(name)
}

// Set changes an environment variable of the process.
//
//go:noinline
func Set(name, value string) error {
	return os.Setenv(name, value)
}

// PhoneHome dials addr over TCP and sends the user's name.
//
//go:noinline
func PhoneHome(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte("user=" + os.Getenv("USER") + "\n"))
	return err
}

// Dump writes everything telemetry knows into path.
//
//go:noinline
func Dump(path string) error {
	return os.WriteFile(path, []byte("home="+os.Getenv("HOME")+"\n"), 0o600)
}
