// Package config is the dependency of the argument-scoped rules fixture: a config library that
// legitimately reads its files and variables and dials its collector, and can be told to do the same
// with other arguments. Every function does exactly one capability call with the argument it is given.
package config

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Getenv reads one environment variable.
func Getenv(name string) string { return os.Getenv(name) }

// Read reads a file.
func Read(path string) ([]byte, error) { return os.ReadFile(path) }

// Write creates or truncates a file.
func Write(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

// ReadAt opens name relative to the directory dir (openat with a directory fd, not AT_FDCWD).
func ReadAt(dir, name string) error {
	dfd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(dfd)
	fd, err := syscall.Openat(dfd, name, syscall.O_RDONLY, 0)
	if err != nil {
		return err
	}
	return syscall.Close(fd)
}

// Dial connects to addr: "unix:PATH" for a Unix socket, else TCP host:port.
func Dial(addr string) error {
	network := "tcp"
	if strings.HasPrefix(addr, "unix:") {
		network, addr = "unix", strings.TrimPrefix(addr, "unix:")
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		return err
	}
	_, err = c.Write([]byte("hello\n"))
	c.Close()
	return err
}

// ConnectMapped connects an IPv6 socket to ::ffff:127.0.0.1:port (the kernel gets an IPv4-mapped IPv6
// address, which net.Dial never passes) with syscall.Connect.
func ConnectMapped(port int) error {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrInet6{Port: port, Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}}
	return syscall.Connect(fd, sa)
}

// SendTo sends one datagram to addr from a socket bound to local (no connect(2)).
func SendTo(local, addr string) error {
	pc, err := net.ListenPacket("udp", local)
	if err != nil {
		return err
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	_, err = pc.WriteTo([]byte("datagram\n"), to)
	return err
}

// Listen binds addr and closes it again.
func Listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// Exec runs a program, with an environment of its own (so os/exec does not read the whole environment,
// which only an any-argument env.read grant covers).
func Exec(path string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	return cmd.Run()
}

// Rename renames a file.
func Rename(from, to string) error { return os.Rename(from, to) }

// Symlink makes link point at target.
func Symlink(target, link string) error { return os.Symlink(target, link) }

// Link makes a hard link.
func Link(from, to string) error { return os.Link(from, to) }

//go:noinline
func run(f func() error) error { return f() }

// Indirect writes path from a closure it hands to run: Indirect is small enough to be inlined into its
// caller, and Go then names the closure after the caller (main.main.Indirect.func1), although its code
// is this package's.
func Indirect(path string) error { return run(func() error { return Write(path, "indirect\n") }) }

// Hammer runs 8 goroutines that each write rounds files in dir; when denied is not "", the goroutine 7
// writes it once, halfway through.
func Hammer(dir, denied string, rounds int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				if g == 7 && denied != "" && i == rounds/2 {
					if err := Write(denied, "denied\n"); err != nil {
						errs <- err
						return
					}
				}
				if err := Write(fmt.Sprintf("%s/g%d-%d.txt", dir, g, i), "ok\n"); err != nil {
					errs <- err
					return
				}
				_ = Getenv("ACME_LEVEL")
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// LoopGetenv reads one variable n times, after one warm-up read, and returns the nanoseconds per read:
// one env.read hook per iteration (bench/bench_argrules.py).
func LoopGetenv(name string, n int) float64 {
	total := len(os.Getenv(name))
	start := time.Now()
	for i := 0; i < n; i++ {
		total += len(os.Getenv(name))
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(n)
	if total < 0 {
		panic("unreachable") // keeps the reads
	}
	return ns
}

// LoopStat stats one path n times, after one warm-up stat, and returns the nanoseconds per stat: one
// files.read hook (syscall.fstatat) per iteration, with a system call that does no I/O.
func LoopStat(path string, n int) (float64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := os.Stat(path); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n), nil
}
