// Command traceapp is the fixture of gohook's ptrace tracer (gohook/attach/tracer.py, tests/attach/): a Go
// program that keeps the runtime's own signals busy while a tracer stops it at every signal.
//
//	traceapp busy     8 spinning goroutines (the runtime preempts them with SIGURG every ~10 ms), until
//	                  stdin says "quit" or closes
//	traceapp sigsys   raise SIGSYS on one locked thread with tgkill and report what tgkill returned
//	traceapp work N   8 goroutines each do N rounds of arithmetic, then report the wall time
//
// Output is one line per event on stdout (unbuffered):
//
//	ready                          the handlers are installed (busy, sigsys)
//	tick N                         every 100 ms while busy (the program is running, not stopped)
//	usr1 N                         the Nth SIGUSR1 arrived (busy)
//	spawned N                      after stdin "spawn N": N goroutines locked to their own threads (new Ms)
//	                               (stdin "exec": a thread other than the main one execs traceapp busy)
//	tid N                          sigsys: the thread that will raise SIGSYS (not the main thread); it then
//	                               waits for stdin "go"
//	err E                          sigsys: the error tgkill returned ("nil" when none)
//	survived                       sigsys: the program went on after the SIGSYS
//	done {"usr1":N,"spins":N}      busy: the end (exit status 0)
//	seconds S                      work: wall time of the work
//
// Under no tracer, "traceapp sigsys" dies of SIGSYS: the Go runtime crashes with "SIGSYS: bad system call"
// (exit status 2). A tracer that suppresses the signal lets it print "survived"; one that also sets RAX
// at the signal stop (the tgkill system call has returned there) makes tgkill return that errno.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// init locks the main goroutine to the main thread (the runtime then runs main.main there): the
// goroutines that raise SIGSYS or exec run on other threads, the cases a tracer must follow.
func init() {
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: traceapp busy | sigsys | work N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "busy":
		busy()
	case "sigsys":
		sigsys()
	case "work":
		n, err := strconv.Atoi(os.Args[len(os.Args)-1])
		if err != nil || len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: traceapp work N")
			os.Exit(2)
		}
		work(n)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

// spin does rounds of arithmetic without a function call (no cooperative preemption point: only the
// runtime's SIGURG can preempt it), checking stop every 2^20 rounds; it returns the rounds done.
func spin(stop *atomic.Bool, rounds int) int {
	x := uint64(1)
	i := 0
	for ; rounds < 0 || i < rounds; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		if i&(1<<20-1) == 0 && stop != nil && stop.Load() {
			break
		}
	}
	if x == 42 { // keeps x alive
		fmt.Fprintln(os.Stderr, "impossible")
	}
	return i
}

func busy() {
	var stop atomic.Bool
	var spins atomic.Int64
	var workers sync.WaitGroup
	for i := 0; i < 8; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			spins.Add(int64(spin(&stop, -1)))
		}()
	}

	usr1 := make(chan os.Signal, 16)
	signal.Notify(usr1, syscall.SIGUSR1)
	var count atomic.Int64
	go func() {
		for range usr1 {
			fmt.Println("usr1", count.Add(1))
		}
	}()

	go func() {
		for n := 1; ; n++ {
			time.Sleep(100 * time.Millisecond)
			fmt.Println("tick", n)
		}
	}()

	fmt.Println("ready")
	block := make(chan struct{})
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 2 && fields[0] == "spawn" {
			n, _ := strconv.Atoi(fields[1])
			var started sync.WaitGroup
			for i := 0; i < n; i++ {
				started.Add(1)
				go func() {
					runtime.LockOSThread() // this M now runs only this goroutine: the runtime needs new Ms
					started.Done()
					<-block
				}()
			}
			started.Wait()
			fmt.Println("spawned", n)
		} else if len(fields) == 1 && fields[0] == "exec" {
			go func() {
				runtime.LockOSThread() // not the main thread (main holds it): the kernel's de_thread case
				exe, err := os.Executable()
				if err == nil {
					err = syscall.Exec(exe, []string{exe, "busy"}, os.Environ())
				}
				fmt.Println("exec failed:", err)
				os.Exit(1)
			}()
		} else if len(fields) == 1 && fields[0] == "quit" {
			break
		}
	}
	stop.Store(true)
	workers.Wait()
	out, _ := json.Marshal(map[string]int64{"usr1": count.Load(), "spins": spins.Load()})
	fmt.Println("done", string(out))
}

// denied raises SIGSYS on the calling thread, as gohook's BPF program does at a denied call, and returns
// what the tgkill system call returned.
//
//go:noinline
func denied(tid int) error {
	return syscall.Tgkill(os.Getpid(), tid, syscall.SIGSYS)
}

func sigsys() {
	fmt.Println("ready")
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		runtime.LockOSThread()
		tid := syscall.Gettid()
		fmt.Println("tid", tid)
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() && strings.TrimSpace(lines.Text()) != "go" {
		}
		err := denied(tid)
		if err == nil {
			fmt.Println("err nil")
		} else {
			fmt.Println("err", err.Error())
		}
	}()
	<-finished
	fmt.Println("survived")
}

func work(rounds int) {
	start := time.Now()
	var workers sync.WaitGroup
	for i := 0; i < 8; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			spin(nil, rounds)
		}()
	}
	workers.Wait()
	fmt.Println("seconds", time.Since(start).Seconds())
}
