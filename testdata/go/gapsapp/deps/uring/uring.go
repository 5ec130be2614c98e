// Package uring is a fake "fast I/O" module for gohook's gap analysis (issue 12 §5c, §5d): it calls
// the system-call wrappers whose capabilities (memory.exec, tamper, io_uring, sendto/sendmsg with an
// address) no hook charges yet, sets up an io_uring with syscall.Syscall(425, ...) and issues getpid
// from its own assembly (MOVQ $39, AX; SYSCALL). `gohook inspect` names each wrapper call as a
// `syscall_wrapper` gap and the numbers it sees in the `raw_syscall` and `asm` gaps.
package uring

import "syscall"

// Params is struct io_uring_params (120 bytes).
type Params struct {
	Raw [120]byte
}

// IoUringSetup is io_uring_setup(2), by number.
//
//go:noinline
func IoUringSetup(entries uint32, p *Params) (int, error) {
	fd, _, errno := syscall.Syscall(425, uintptr(entries), uintptr(unsafePointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// Protect makes b executable.
//
//go:noinline
func Protect(b []byte) error {
	return syscall.Mprotect(b, syscall.PROT_READ|syscall.PROT_EXEC)
}

// Map maps an anonymous page.
//
//go:noinline
func Map() ([]byte, error) {
	return syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

// Drop advises the kernel that b is not needed.
//
//go:noinline
func Drop(b []byte) error {
	return syscall.Madvise(b, syscall.MADV_DONTNEED)
}

// SendTo sends p to a UDP address on fd.
//
//go:noinline
func SendTo(fd int, p []byte, to syscall.Sockaddr) error {
	return syscall.Sendto(fd, p, 0, to)
}

// SendMsg sends p with out-of-band data oob to a UDP address on fd.
//
//go:noinline
func SendMsg(fd int, p, oob []byte, to syscall.Sockaddr) error {
	return syscall.Sendmsg(fd, p, oob, to, 0)
}

// getpid issues getpid(2) from assembly (uring_amd64.s).
func getpid() int

// Pid returns the process id, from the module's own syscall instruction.
//
//go:noinline
func Pid() int {
	return getpid()
}
