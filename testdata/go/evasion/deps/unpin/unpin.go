// Package unpin is a fake "process supervision helper" module for gohook's
// adversarial suite (issue 12 section 4, a tamper-proof enforcer). It never
// makes a denied call while gohook watches; it tries to make gohook stop
// watching first:
//
//   - Orphan clears its own parent-death signal (prctl(PR_SET_PDEATHSIG, 0) on every thread),
//     SIGKILLs its parent and the enforcer's pid, says "ready", sleeps, and
//     only then writes a file: if anyone kills gohook meanwhile and the
//     process survives, the write is no longer enforced.
//   - Unhook takes gohook's uprobe breakpoints (int3, 0xCC) out of the first
//     bytes of a function of its own process without a hooked call: "write"
//     makes the page writable and puts the executable file's bytes back,
//     "madvise" drops the page (MADV_DONTNEED: it is read back from the file,
//     without the breakpoint).
//
// Every system call goes through syscall.RawSyscall or AllThreadsSyscall (capability `syscall`).
package unpin

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

const (
	prSetPdeathsig = 1
	madvDontneed   = 4
	scan           = 64 // bytes of the function scanned for breakpoints
)

func errnoString(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	return e.Error()
}

// Orphan clears the death signal, tries to kill its parent and enforcer, prints "ready", sleeps, writes path.
//
//go:noinline
func Orphan(enforcer int, wait time.Duration, path string) error {
	// the death signal is per thread (the one that exec'd has it): clear it on every thread
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, prSetPdeathsig, 0, 0)
	fmt.Printf("prctl(PR_SET_PDEATHSIG, 0): %s\n", errnoString(e))
	ppid, _, _ := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	for _, pid := range []uintptr{ppid, uintptr(enforcer)} {
		_, _, e := syscall.RawSyscall(syscall.SYS_KILL, pid, uintptr(syscall.SIGKILL), 0)
		fmt.Printf("kill(%d, SIGKILL): %s\n", pid, errnoString(e))
	}
	fmt.Println("ready")
	time.Sleep(wait)
	return os.WriteFile(path, []byte("outlived the enforcer\n"), 0o644)
}

// fileOffset is the offset in the executable of text address addr (from /proc/self/maps).
func fileOffset(addr uintptr) (int64, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) < 6 || fields[5] != exe {
			continue
		}
		bounds := strings.SplitN(fields[0], "-", 2)
		start, _ := strconv.ParseUint(bounds[0], 16, 64)
		end, _ := strconv.ParseUint(bounds[1], 16, 64)
		off, _ := strconv.ParseUint(fields[2], 16, 64)
		if uint64(addr) >= start && uint64(addr) < end {
			return int64(uint64(addr) - start + off), nil
		}
	}
	return 0, fmt.Errorf("%#x is not in a mapping of %s", addr, exe)
}

// Unhook removes the breakpoints in the first bytes of fn (a func value) by method "write" or "madvise";
// it returns how many it found.
//
//go:noinline
func Unhook(fn any, method string) (int, error) {
	entry := reflect.ValueOf(fn).Pointer()
	mem := unsafe.Slice((*byte)(unsafe.Pointer(entry)), scan)
	off, err := fileOffset(entry)
	if err != nil {
		return 0, err
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	defer exe.Close()
	orig := make([]byte, scan)
	if _, err := exe.ReadAt(orig, off); err != nil {
		return 0, err
	}
	var found []int
	for i := range mem {
		if mem[i] == 0xCC && orig[i] != 0xCC {
			found = append(found, i)
		}
	}
	page := entry &^ 4095
	const span = 2 * 4096 // the scanned bytes may cross into the next page
	switch method {
	case "write":
		if _, _, e := syscall.RawSyscall(syscall.SYS_MPROTECT, page, span,
			syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC); e != 0 {
			return 0, e
		}
		for _, i := range found {
			mem[i] = orig[i]
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_MPROTECT, page, span, syscall.PROT_READ|syscall.PROT_EXEC); e != 0 {
			return 0, e
		}
	case "madvise":
		if _, _, e := syscall.RawSyscall(syscall.SYS_MADVISE, page, span, madvDontneed); e != 0 {
			return 0, e
		}
	default:
		return 0, fmt.Errorf("unknown method %q", method)
	}
	for _, i := range found {
		if mem[i] == 0xCC {
			return len(found), fmt.Errorf("the breakpoint at +%d is still there", i)
		}
	}
	return len(found), nil
}

// Getenv unhooks syscall.Getenv by method ("none": leaves it), waits, then reads the variable name, which
// this module may not (env.read): the read only goes unseen if the breakpoint stays gone.
//
//go:noinline
func Getenv(method string, wait time.Duration, name string) error {
	if method != "none" {
		n, err := Unhook(syscall.Getenv, method)
		if err != nil {
			return err
		}
		fmt.Printf("unhooked syscall.Getenv (%s): %d breakpoints\n", method, n)
	}
	time.Sleep(wait)
	fmt.Printf("%s=%s\n", name, os.Getenv(name))
	return nil
}
