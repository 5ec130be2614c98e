// Package rawio is a fake "fast I/O" module for gohook's adversarial suite
// (technique 5, direct system calls). It bypasses package os: Create and
// Unlink call syscall.Syscall6 / syscall.RawSyscall themselves, CreateAsm
// issues the `syscall` instruction from its own assembly (rawio_amd64.s),
// which no hooked Go function ever sees, and CreateJIT from machine code it
// writes into an executable page at run time, which no scan of the binary
// finds either.
package rawio

import (
	"syscall"
	"unsafe"
)

// atFDCWD is AT_FDCWD (-100): relative to the working directory.
var atFDCWD = -0x64

func cstring(s string) *byte {
	b, err := syscall.BytePtrFromString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Create creates path with syscall.Syscall6(SYS_OPENAT, ...).
//
//go:noinline
func Create(path string) error {
	p := cstring(path)
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)),
		uintptr(syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC), 0o644, 0, 0)
	if errno != 0 {
		return errno
	}
	return syscall.Close(int(fd))
}

// Unlink removes path with syscall.RawSyscall(SYS_UNLINKAT, ...).
//
//go:noinline
func Unlink(path string) error {
	p := cstring(path)
	_, _, errno := syscall.RawSyscall(syscall.SYS_UNLINKAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// openat issues the system call from assembly (rawio_amd64.s).
func openat(dirfd int, path *byte, flags int, mode int) (r int)

// CreateAsm creates path with the module's own `syscall` instruction.
//
//go:noinline
func CreateAsm(path string) error {
	fd := openat(atFDCWD, cstring(path), syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC, 0o644)
	if fd < 0 {
		return syscall.Errno(-fd)
	}
	return syscall.Close(fd)
}

// jitOpenat is machine code for `openat(AT_FDCWD, path in RAX, O_CREAT|O_WRONLY|O_TRUNC, 0644)`
// with Go's register ABI: path in RAX, the result back in RAX.
var jitOpenat = []byte{
	0x48, 0x89, 0xc6, // mov rsi, rax
	0x48, 0xc7, 0xc7, 0x9c, 0xff, 0xff, 0xff, // mov rdi, -100
	0xba, 0x41, 0x02, 0x00, 0x00, // mov edx, 0x241
	0x41, 0xba, 0xa4, 0x01, 0x00, 0x00, // mov r10d, 0644
	0xb8, 0x01, 0x01, 0x00, 0x00, // mov eax, 257 (SYS_openat)
	0x0f, 0x05, // syscall
	0xc3, // ret
}

// CreateJIT creates path with a `syscall` instruction written at run time
// into an executable page: no scan of the binary can find it.
//
//go:noinline
func CreateJIT(path string) error {
	page, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC,
		syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return err
	}
	copy(page, jitOpenat)
	code := &struct{ pc uintptr }{uintptr(unsafe.Pointer(&page[0]))} // a func value is a pointer to its code pointer
	openat := *(*func(path *byte) int)(unsafe.Pointer(&code))
	fd := openat(cstring(path))
	if fd < 0 {
		return syscall.Errno(-fd)
	}
	return syscall.Close(fd)
}
