package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// churnOps are the operations of `perfapp churn`: system calls that gohook's
// guard (issue 12) watches on per-system-call tracepoints, made by this module
// or by the Go runtime, and getpid, a system call the guard does not watch.
var churnOps = []string{"madvise", "mprotect", "mmap", "gc", "getpid"}

var churnSink []byte

// churn performs op n times on one page of anonymous memory and prints one
// JSON line with ns_per_op (bench/bench_guard.py):
//
//	madvise:  syscall.Madvise(page, MADV_NORMAL): guarded, no Go-level hook
//	mprotect: syscall.Mprotect(page, PROT_READ|PROT_WRITE): a Go-level hook and the guard
//	mmap:     syscall.Mmap then syscall.Munmap of one page: a Go-level hook and the guard
//	gc:       allocate 1 MiB, then runtime.GC() while another goroutine spins: the
//	          runtime's own mmap, madvise and tgkill (preemption signals)
//	getpid:   syscall.Getpid: no guarded system call at all (the control)
func churn(args []string) error {
	fs := flag.NewFlagSet("churn", flag.ContinueOnError)
	op := fs.String("op", "madvise", "operation: madvise, mprotect, mmap, gc, getpid")
	n := fs.Int("n", 100000, "operations")
	if err := fs.Parse(args); err != nil {
		return err
	}
	const rw = syscall.PROT_READ | syscall.PROT_WRITE
	const anon = syscall.MAP_ANON | syscall.MAP_PRIVATE
	page, err := syscall.Mmap(-1, 0, 4096, rw, anon)
	if err != nil {
		return err
	}
	var stop atomic.Bool
	defer stop.Store(true)
	var f func() error
	switch *op {
	case "madvise":
		f = func() error { return syscall.Madvise(page, syscall.MADV_NORMAL) }
	case "mprotect":
		f = func() error { return syscall.Mprotect(page, rw) }
	case "mmap":
		f = func() error {
			b, err := syscall.Mmap(-1, 0, 4096, rw, anon)
			if err != nil {
				return err
			}
			return syscall.Munmap(b)
		}
	case "gc":
		go func() {
			x := 0
			for !stop.Load() {
				x++
			}
			churnSink = make([]byte, x&1)
		}()
		f = func() error {
			churnSink = make([]byte, 1<<20)
			runtime.GC()
			return nil
		}
	case "getpid":
		f = func() error { syscall.Getpid(); return nil }
	default:
		return fmt.Errorf("unknown op %q (%v)", *op, churnOps)
	}
	if err := f(); err != nil { // warm-up
		return err
	}
	start := time.Now()
	for i := 0; i < *n; i++ {
		if err := f(); err != nil {
			return err
		}
	}
	per := float64(time.Since(start).Nanoseconds()) / float64(*n)
	out, _ := json.Marshal(map[string]any{"op": *op, "n": *n, "ns_per_op": per})
	fmt.Println(string(out))
	return nil
}
