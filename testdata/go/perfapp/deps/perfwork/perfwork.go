// Package perfwork is the fake third-party module of gohook's performance
// benchmark (bench/evaluate.py): it performs one capability operation in a
// loop at a chosen stack depth, so that every hooked call is attributed to
// this module, and reports the time per operation measured in the process.
package perfwork

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"
)

// Ops are the operations Run knows: each one use of a capability, and spawn
// (start a goroutine and wait for it: what goroutine provenance costs).
var Ops = []string{"open", "getenv", "dial", "exec", "spawn"}

// Config says what Run does.
type Config struct {
	Op      string // one of Ops
	N       int    // operations per thread
	Depth   int    // extra stack frames between Run and the loop
	Threads int    // goroutines, each locked to its own OS thread
	Path    string // open: the file opened and closed
	Env     string // getenv: the variable read
	Exe     string // exec: the program run (no arguments)
}

// Run performs cfg.N operations on each of cfg.Threads threads, at
// cfg.Depth extra frames, and returns the wall time of the slowest thread
// divided by cfg.N, in nanoseconds: the time one operation takes on one thread.
func Run(cfg Config) (float64, error) {
	if cfg.N <= 0 || cfg.Depth < 0 || cfg.Threads <= 0 {
		return 0, errors.New("perfwork: N and Threads must be positive, Depth not negative")
	}
	op, cleanup, err := prepare(cfg)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	if err := op(); err != nil { // warm up (lazy initialisation, stack growth) outside the timing
		return 0, err
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, cfg.Threads)
	ends := make([]time.Time, cfg.Threads)
	for t := 0; t < cfg.Threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-start
			errs[t] = descend(cfg.Depth, cfg.N, op)
			ends[t] = time.Now()
		}(t)
	}
	time.Sleep(time.Millisecond) // let every thread reach the start line
	begin := time.Now()
	close(start)
	wg.Wait()
	var slowest time.Duration
	for t := range ends {
		if errs[t] != nil {
			return 0, errs[t]
		}
		if d := ends[t].Sub(begin); d > slowest {
			slowest = d
		}
	}
	return float64(slowest.Nanoseconds()) / float64(cfg.N), nil
}

// descend adds one physical frame per level, then runs the loop.
//
//go:noinline
func descend(depth, n int, op func() error) error {
	if depth > 0 {
		return descend(depth-1, n, op)
	}
	return loop(n, op)
}

//go:noinline
func loop(n int, op func() error) error {
	for i := 0; i < n; i++ {
		if err := op(); err != nil {
			return err
		}
	}
	return nil
}

func prepare(cfg Config) (func() error, func(), error) {
	nothing := func() {}
	switch cfg.Op {
	case "open":
		return func() error { return openClose(cfg.Path) }, nothing, nil
	case "getenv":
		return func() error { getenv(cfg.Env); return nil }, nothing, nil
	case "exec":
		return func() error { return execTrue(cfg.Exe) }, nothing, nil
	case "spawn":
		return spawn, nothing, nil
	case "dial":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		go acceptLoop(ln)
		addr := ln.Addr().String()
		return func() error { return dialClose(addr) }, func() { ln.Close() }, nil
	}
	return nil, nil, fmt.Errorf("perfwork: unknown op %q (known: %v)", cfg.Op, Ops)
}

//go:noinline
func openClose(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

var sink int

//go:noinline
func getenv(name string) {
	sink += len(os.Getenv(name))
}

//go:noinline
func dialClose(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	// An abortive close (RST) leaves no TIME_WAIT socket behind: tens of
	// thousands of dials would otherwise exhaust the ephemeral ports.
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return c.Close()
}

func acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

//go:noinline
func spawn() error {
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
	return nil
}

//go:noinline
func execTrue(exe string) error {
	return exec.Command(exe).Run()
}
