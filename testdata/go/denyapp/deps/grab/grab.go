// Package grab is the misbehaving dependency of the graceful-deny fixture (testdata/go/denyapp): the test
// policies deny it the capabilities it uses, so under `action: error` each of its calls below must return
// EPERM to it (and the process go on) instead of the process being killed.
//
// Every method makes exactly one kind of capability call, directly, from this package's code: the
// methods are //go:noinline so that no call site is inlined into (and attributed to) the main module.
// github.com/good/worker has the same methods, body for body: the tests allow it, so its calls must
// never fail.
package grab

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// Lib holds the capability calls; its methods satisfy denyapp's capabilities interface.
type Lib struct{}

// Read reads a whole file (os.ReadFile).
//
//go:noinline
func (*Lib) Read(path string) ([]byte, error) { return os.ReadFile(path) }

// Create creates or truncates a file (os.WriteFile: O_CREAT|O_TRUNC|O_WRONLY).
//
//go:noinline
func (*Lib) Create(path string) error { return os.WriteFile(path, []byte("created\n"), 0o644) }

// Remove removes a file (os.Remove: unlinkat, then rmdir-style unlinkat).
//
//go:noinline
func (*Lib) Remove(path string) error { return os.Remove(path) }

// Stat returns a file's size (os.Stat: fstatat).
//
//go:noinline
func (*Lib) Stat(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Dial connects to a TCP address and closes the connection; it returns the remote address.
//
//go:noinline
func (*Lib) Dial(addr string) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	remote := c.RemoteAddr().String()
	return remote, c.Close()
}

// Listen binds a TCP socket on 127.0.0.1:0 and closes it; it returns the bound address.
//
//go:noinline
func (*Lib) Listen() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	local := l.Addr().String()
	return local, l.Close()
}

// SendTo sends one datagram to addr from an unconnected UDP socket bound to 127.0.0.1:0 (sendto(2) with
// an address, no connect(2)); it returns the number of bytes sent.
//
//go:noinline
func (*Lib) SendTo(addr string) (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return 0, err
	}
	return pc.WriteTo([]byte("datagram\n"), to)
}

// Exec runs a program and waits for it (os/exec Command.Run). The child gets an environment of its own,
// so that os/exec does not read this process's environment: the call is an exec and nothing else.
//
//go:noinline
func (*Lib) Exec(path string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	return cmd.Run()
}

// Getenv reads one environment variable (os.Getenv).
//
//go:noinline
func (*Lib) Getenv(name string) string { return os.Getenv(name) }

// LookupEnv reads one environment variable and whether it is set (os.LookupEnv).
//
//go:noinline
func (*Lib) LookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

// Environ returns the whole environment (os.Environ).
//
//go:noinline
func (*Lib) Environ() []string { return os.Environ() }

// Setenv sets one environment variable (os.Setenv).
//
//go:noinline
func (*Lib) Setenv(name, value string) error { return os.Setenv(name, value) }

// Unsetenv removes one environment variable (os.Unsetenv).
//
//go:noinline
func (*Lib) Unsetenv(name string) error { return os.Unsetenv(name) }

// Clearenv removes every environment variable (os.Clearenv).
//
//go:noinline
func (*Lib) Clearenv() { os.Clearenv() }

// Kill sends signal 0 to pid with syscall.Kill.
//
//go:noinline
func (*Lib) Kill(pid int) error { return syscall.Kill(pid, 0) }

// Signal sends signal 0 to pid through os.FindProcess(pid).Signal (kill(2), or pidfd_open and
// pidfd_send_signal with Go 1.23+).
//
//go:noinline
func (*Lib) Signal(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	return p.Signal(syscall.Signal(0))
}

// Uname returns the kernel's name (syscall.Uname's Sysname).
//
//go:noinline
func (*Lib) Uname() (string, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", err
	}
	b := make([]byte, 0, len(u.Sysname))
	for _, c := range u.Sysname {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b), nil
}

// Hostname returns the host name (os.Hostname: /proc/sys/kernel/hostname, else uname(2)).
//
//go:noinline
func (*Lib) Hostname() (string, error) { return os.Hostname() }

// MmapExec maps one anonymous page readable and executable (syscall.Mmap with PROT_EXEC), then unmaps
// it; it returns the mapping's length.
//
//go:noinline
func (*Lib) MmapExec() (int, error) {
	b, err := syscall.Mmap(-1, 0, os.Getpagesize(), syscall.PROT_READ|syscall.PROT_EXEC, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, err
	}
	n := len(b)
	return n, syscall.Munmap(b)
}

// RawSyscall calls getpid through syscall.Syscall (SYS_GETPID): a system call by number.
//
//go:noinline
func (*Lib) RawSyscall() (int, error) {
	r1, _, errno := syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r1), nil
}

// BlockSigsysRead blocks SIGSYS on its thread (rt_sigprocmask through syscall.RawSyscall6, the thread locked),
// then reads path (os.ReadFile): a module that knows gohook hands a denied call over with SIGSYS and keeps
// the signal from arriving before the call runs. It needs `syscall` for the mask.
//
//go:noinline
func (*Lib) BlockSigsysRead(path string) ([]byte, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	set := uint64(1) << (uint(syscall.SIGSYS) - 1)
	var old uint64
	const sigBlock, sigSetmask = 0, 2
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigBlock, uintptr(unsafe.Pointer(&set)),
		uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		return nil, e
	}
	defer syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigSetmask, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	return os.ReadFile(path)
}

// LocalZone formats the current time in the local time zone: the first use of time.Local makes the
// standard library read TZ and /etc/localtime (time.initLocal, once), on whoever's behalf it happens.
//
//go:noinline
func (*Lib) LocalZone() string {
	name, _ := time.Now().Local().Zone()
	return name
}
