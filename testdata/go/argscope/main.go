// Command argscope runs one call of github.com/acme/config with the arguments it is given: the fixture
// of argument-scoped rules (tests/test_argscope_live.py). It prints "ok" (and what it read) and exits 0
// on success, prints the error and exits 1 on failure; gohook's kill is exit status -9.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/acme/config"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: argscope OP ARG...")
		os.Exit(2)
	}
	a := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "getenv":
		fmt.Printf("value=%q\n", config.Getenv(a[0]))
	case "read":
		var b []byte
		b, err = config.Read(a[0])
		fmt.Printf("read %d bytes\n", len(b))
	case "write":
		err = config.Write(a[0], "written\n")
	case "readat":
		err = config.ReadAt(a[0], a[1])
	case "dial":
		err = config.Dial(a[0])
	case "connect-mapped":
		port, _ := strconv.Atoi(a[0])
		err = config.ConnectMapped(port)
	case "sendto":
		err = config.SendTo(a[0], a[1])
	case "listen":
		err = config.Listen(a[0])
	case "exec":
		err = config.Exec(a[0], a[1:]...)
	case "rename":
		err = config.Rename(a[0], a[1])
	case "symlink":
		err = config.Symlink(a[0], a[1])
	case "link":
		err = config.Link(a[0], a[1])
	case "loop-getenv", "loop-stat":
		// the benchmark of argument-scoped rules (bench/bench_argrules.py): one hooked call N times, ns per
		// call measured here, as one JSON line
		n, _ := strconv.Atoi(a[1])
		var ns float64
		if os.Args[1] == "loop-getenv" {
			ns = config.LoopGetenv(a[0], n)
		} else {
			ns, err = config.LoopStat(a[0], n)
		}
		if err == nil {
			fmt.Printf("{\"ns_per_op\": %.3f, \"n\": %d}\n", ns, n)
		}
	case "indirect":
		err = config.Indirect(a[0])
	case "until-term":
		// a service's shutdown path: on SIGTERM, config reads a variable, then main exits 0
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM)
		fmt.Println("serving")
		<-stop
		fmt.Printf("shutdown %q\n", config.Getenv(a[0]))
	case "hammer":
		n, _ := strconv.Atoi(a[2])
		err = config.Hammer(a[0], a[1], n)
	default:
		err = fmt.Errorf("unknown op %q", os.Args[1])
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}
