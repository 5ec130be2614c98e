// Command gapsapp is gohook's fixture for the gaps static analysis names but cannot block (issue 12
// §5): each dependency under deps/ holds one kind, deps/plain none. The program runs every path once
// (with a flag), so the binary keeps all of them; the tests read it only statically.
package main

import (
	"fmt"
	"os"

	"github.com/acme/plain"
	"github.com/fastio/uring"
	"github.com/sysprobe/envpeek"
	"github.com/taskq/relay"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Println(len(plain.Words("go.mod")))
		return
	}
	fmt.Println(len(envpeek.Environ()), uring.Pid())
	done := make(chan error)
	for _, job := range relay.Jobs() {
		go func(job func() error) { done <- job() }(job)
		fmt.Println(<-done)
	}
	remove := relay.Remover()
	go func() { done <- remove("/nonexistent/gapsapp") }()
	fmt.Println(<-done)
	var p uring.Params
	fd, err := uring.IoUringSetup(1, &p)
	fmt.Println(fd, err)
	if b, err := uring.Map(); err == nil {
		fmt.Println(uring.Protect(b), uring.Drop(b))
	}
	fmt.Println(uring.SendTo(-1, nil, &syscallAddr), uring.SendMsg(-1, nil, nil, &syscallAddr))
}
