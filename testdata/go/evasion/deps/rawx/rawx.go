// Package rawx is a fake "low-level performance toolkit" module for gohook's adversarial suite (issue 12
// §3 and §4): it makes its system calls with its own `syscall` instruction (syscall6, rawx_amd64.s), so
// no standard-library function and no raw system-call hook is on the way, and goes for the system calls
// that switch enforcement off or slip past it:
//
//   - rawx-unhook write|int80|madvise SECONDS NAME: makes the code of syscall.Getenv writable (mprotect,
//     through the x86-64 table or through `int 0x80` and the i386 table) and puts back the bytes under
//     gohook's breakpoints, or drops its page (madvise MADV_DONTNEED), waits, then reads variable NAME,
//     which this module may not (env.read);
//   - rawx-exec-page: maps an anonymous page read-write, writes `ret` into it, makes it executable
//     (mprotect PROT_EXEC) and calls it;
//   - rawx-kill PID SIG / rawx-ptrace PID / rawx-pvwrite PID: signal SIG (0: only a check), PTRACE_SEIZE or
//     a process_vm_writev (to an unmapped address) of process PID (gohook's own, in the test);
//   - rawx-uring: io_uring_setup, the second system-call interface;
//   - rawx-bpf: bpf(BPF_PROG_GET_NEXT_ID), a look at the host's BPF programs (gohook's included);
//   - rawx-sendto ADDR: a UDP datagram to ADDR (sendto with a destination, no connect);
//   - rawx-wait SECONDS PATH: sleeps, then writes PATH (to outlive gohook);
//   - rawx-race N NAME: 8 goroutines of allowed calls, each with one text patch half-way (see race);
//   - rawx-unsafe-env NAME: the variable read from memory with unsafe (no call at all); WriteHeld: a
//     write to a descriptor another module opened (main's technique held-fd).
//
// Each prints what the kernel answered, so an unenforced control run shows the technique works.
package rawx

import (
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

func syscall6(nr, a1, a2, a3, a4, a5, a6 uintptr) (r uintptr, errno uintptr)

func int80(nr, a1, a2, a3 uintptr) (r uintptr)

const i386Mprotect = 125

const (
	sysMmap          = 9
	sysMprotect      = 10
	sysMadvise       = 28
	sysSendto        = 44
	sysSocket        = 41
	sysKill          = 62
	sysPtrace        = 101
	sysProcessVMW    = 311
	sysBPF           = 321
	sysIOUringSetup  = 425
	madvDontneed     = 4
	ptraceSeize      = 0x4206
	bpfProgGetNextID = 11
	scan             = 64
)

func errstr(e uintptr) string {
	if e == 0 {
		return "ok"
	}
	return syscall.Errno(e).Error()
}

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{
	"rawx-unhook":     unhookGetenv,
	"rawx-exec-page":  execPage,
	"rawx-kill":       kill,
	"rawx-ptrace":     func(a []string) error { return atPid(a, "ptrace(PTRACE_SEIZE)", sysPtrace, ptraceSeize, 1) },
	"rawx-pvwrite":    pvWrite,
	"rawx-uring":      uring,
	"rawx-bpf":        bpfPeek,
	"rawx-sendto":     sendto,
	"rawx-wait":       wait,
	"rawx-race":       race,
	"rawx-unsafe-env": unsafeEnv,
}

// unsafeEnv finds variable NAME in the process's memory with no call at all: the kernel lays the
// environment strings out right after the argument strings on the initial stack, and os.Args[i] points
// at them. No system call, no hooked function: nothing for gohook to see (a documented limit).
func unsafeEnv(a []string) error {
	if err := need(a, 1, "NAME"); err != nil {
		return err
	}
	last := os.Args[len(os.Args)-1]
	p := *(*uintptr)(unsafe.Pointer(&last)) + uintptr(len(last)) + 1 // the string's data pointer (Go 1.19: no StringData)
	want := a[0] + "="
	for n := 0; n < 256; n++ { // at most 256 variables
		s := string(unsafe.Slice((*byte)(unsafe.Pointer(p)), strlen(p)))
		if s == "" {
			break
		}
		if len(s) > len(want) && s[:len(want)] == want {
			fmt.Printf("%s (read from memory)\n", s)
			return nil
		}
		p += uintptr(len(s)) + 1
	}
	return fmt.Errorf("%s not found after the arguments", a[0])
}

func strlen(p uintptr) int {
	n := 0
	for *(*byte)(unsafe.Pointer(p + uintptr(n))) != 0 && n < 1<<16 {
		n++
	}
	return n
}

// WriteHeld writes to a file another module opened and handed over (a write(2) on a held descriptor
// needs no capability: the capability was decided at the open).
func WriteHeld(f *os.File) error {
	_, err := f.WriteString("rawx wrote through a borrowed descriptor\n")
	return err
}

// race starts 8 goroutines that each make allowed calls (os.Stat: files.read) in a loop and, half-way,
// one denied call each: mprotect of syscall.Getenv's page writable, then a write of the same byte back
// (harmless, but a text patch), at about the same moment on every goroutine; then each reads variable
// NAME (env.read, denied) only if its patch went through. N: iterations per goroutine.
func race(a []string) error {
	if err := need(a, 2, "N NAME"); err != nil {
		return err
	}
	n, _ := strconv.Atoi(a[0])
	page := reflect.ValueOf(syscall.Getenv).Pointer() &^ 4095
	start := make(chan struct{})
	done := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			<-start
			for i := 0; i < n; i++ {
				if _, err := os.Stat("/"); err != nil {
					done <- err.Error()
					return
				}
				if i == n/2 {
					_, e := syscall6(sysMprotect, page, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC,
						0, 0, 0)
					if e != 0 {
						done <- "mprotect: " + errstr(e)
						return
					}
					b := (*byte)(unsafe.Pointer(page))
					*b = *b
				}
			}
			done <- fmt.Sprintf("goroutine %d: %s=%s", g, a[1], os.Getenv(a[1]))
		}(g)
	}
	close(start)
	for g := 0; g < 8; g++ {
		fmt.Println(<-done)
	}
	return nil
}

// wait sleeps SECONDS, then writes PATH (files.write, which this module lacks): the process outlives
// whatever happens to gohook meanwhile only if the write appears.
func wait(a []string) error {
	if err := need(a, 2, "SECONDS PATH"); err != nil {
		return err
	}
	secs, _ := strconv.Atoi(a[0])
	time.Sleep(time.Duration(secs) * time.Second)
	return os.WriteFile(a[1], []byte("outlived gohook\n"), 0o644)
}

func need(a []string, n int, usage string) error {
	if len(a) < n {
		return fmt.Errorf("needs %s", usage)
	}
	return nil
}

//go:noinline
func unhookGetenv(a []string) error {
	if err := need(a, 3, "write|int80|madvise SECONDS NAME"); err != nil {
		return err
	}
	entry := reflect.ValueOf(syscall.Getenv).Pointer()
	page := entry &^ 4095
	const span = 2 * 4096
	mem := unsafe.Slice((*byte)(unsafe.Pointer(entry)), scan)
	exe, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return err
	}
	switch a[0] {
	case "write":
		_, e := syscall6(sysMprotect, page, span, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC, 0, 0, 0)
		fmt.Printf("mprotect(text, rwx): %s\n", errstr(e))
		if e != 0 {
			return syscall.Errno(e)
		}
		restored := 0
		for i := range mem {
			if mem[i] == 0xCC {
				if j := bytesIndex(exe, mem, i); j >= 0 {
					mem[i] = exe[j+i]
					restored++
				}
			}
		}
		fmt.Printf("restored %d bytes\n", restored)
	case "int80": // the same mprotect through the i386 table (the text of a non-PIE binary is below 4 GiB)
		r := int80(i386Mprotect, page, span, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC)
		fmt.Printf("int 0x80 mprotect(text, rwx): %d\n", int(r))
		if r != 0 {
			return fmt.Errorf("int 0x80 mprotect: %d", int(r))
		}
		for i := range mem {
			if mem[i] == 0xCC {
				if j := bytesIndex(exe, mem, i); j >= 0 {
					mem[i] = exe[j+i]
				}
			}
		}
	case "madvise":
		_, e := syscall6(sysMadvise, page, span, madvDontneed, 0, 0, 0)
		fmt.Printf("madvise(text, MADV_DONTNEED): %s\n", errstr(e))
	default:
		return fmt.Errorf("unknown method %q", a[0])
	}
	secs, _ := strconv.Atoi(a[1])
	time.Sleep(time.Duration(secs) * time.Second)
	fmt.Printf("%s=%s\n", a[2], os.Getenv(a[2]))
	return nil
}

// bytesIndex finds the file bytes of the function at mem (around the breakpoint at i, matched on the
// bytes after it) in exe; the offset of mem[0] in exe, or -1.
func bytesIndex(exe, mem []byte, i int) int {
	tail := mem[i+1 : i+17]
	for j := 0; j+i+17 <= len(exe); j++ {
		if exe[j+i+1] == tail[0] && string(exe[j+i+1:j+i+17]) == string(tail) && string(exe[j:j+i]) == string(mem[:i]) {
			return j
		}
	}
	return -1
}

//go:noinline
func execPage(a []string) error {
	addr, e := syscall6(sysMmap, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS, ^uintptr(0), 0)
	if e != 0 {
		return syscall.Errno(e)
	}
	*(*byte)(unsafe.Pointer(addr)) = 0xC3 // ret
	_, e = syscall6(sysMprotect, addr, 4096, syscall.PROT_READ|syscall.PROT_EXEC, 0, 0, 0)
	fmt.Printf("mprotect(page, r-x): %s\n", errstr(e))
	if e != 0 {
		return syscall.Errno(e)
	}
	code := &struct{ pc uintptr }{addr}
	fn := *(*func())(unsafe.Pointer(&code))
	fn()
	fmt.Println("ran code from an anonymous page")
	return nil
}

func atPid(a []string, what string, nr, first uintptr, pidArg int) error {
	if err := need(a, 1, "PID"); err != nil {
		return err
	}
	pid, _ := strconv.Atoi(a[0])
	args := [2]uintptr{first, uintptr(pid)}
	if pidArg == 0 {
		args = [2]uintptr{uintptr(pid), first}
	}
	_, e := syscall6(nr, args[0], args[1], 0, 0, 0, 0)
	fmt.Printf("%s(%d): %s\n", what, pid, errstr(e))
	return nil
}

func kill(a []string) error {
	if err := need(a, 2, "PID SIG"); err != nil {
		return err
	}
	pid, _ := strconv.Atoi(a[0])
	sig, _ := strconv.Atoi(a[1])
	_, e := syscall6(sysKill, uintptr(pid), uintptr(sig), 0, 0, 0, 0)
	fmt.Printf("kill(%d, %d): %s\n", pid, sig, errstr(e))
	return nil
}

func pvWrite(a []string) error {
	if err := need(a, 1, "PID"); err != nil {
		return err
	}
	pid, _ := strconv.Atoi(a[0])
	var b [8]byte
	local := [2]uintptr{uintptr(unsafe.Pointer(&b[0])), 8}
	remote := [2]uintptr{0x10000, 8} // an unmapped address: the call fails, the attempt is what counts
	_, e := syscall6(sysProcessVMW, uintptr(pid), uintptr(unsafe.Pointer(&local)), 1,
		uintptr(unsafe.Pointer(&remote)), 1, 0)
	fmt.Printf("process_vm_writev(%d): %s\n", pid, errstr(e))
	return nil
}

func uring(a []string) error {
	var params [120]byte
	fd, e := syscall6(sysIOUringSetup, 4, uintptr(unsafe.Pointer(&params[0])), 0, 0, 0, 0)
	fmt.Printf("io_uring_setup: %s\n", errstr(e))
	if e == 0 {
		syscall.Close(int(fd))
	}
	return nil
}

func bpfPeek(a []string) error {
	var attr [16]byte
	_, e := syscall6(sysBPF, bpfProgGetNextID, uintptr(unsafe.Pointer(&attr[0])), 16, 0, 0, 0)
	fmt.Printf("bpf(BPF_PROG_GET_NEXT_ID): %s, id %d\n", errstr(e), *(*uint32)(unsafe.Pointer(&attr[4])))
	return nil
}

func sendto(a []string) error {
	if err := need(a, 1, "ADDR"); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(a[0])
	if err != nil {
		return err
	}
	fd, e := syscall6(sysSocket, syscall.AF_INET, syscall.SOCK_DGRAM, 0, 0, 0, 0)
	if e != 0 {
		return syscall.Errno(e)
	}
	defer syscall.Close(int(fd))
	sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ap.Addr().As4()}
	port := ap.Port()
	sa.Port = port<<8 | port>>8
	msg := []byte("rawx datagram")
	_, e = syscall6(sysSendto, fd, uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)), 0,
		uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	fmt.Printf("sendto(%s): %s\n", a[0], errstr(e))
	return nil
}
