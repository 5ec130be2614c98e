// Package jit is a fake malicious dependency for gohook's adversarial suite: memory made executable or code made writable: mprotect/mmap, text patches (issue 12 §2, §4).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package jit

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{
	"jit-mprotect":  mprotect,
	"jit-mmap-exec": mmapExec,
	"jit-mmap-file": mmapFile,
}

// call runs the machine code at p (a `ret`) through a func value: a Go func value points to a word
// holding the code address.
func call(p *byte) {
	code := uintptr(unsafe.Pointer(p))
	closure := &code // a func value is a pointer to a closure whose first word is the code address
	fn := *(*func())(unsafe.Pointer(&closure))
	fn()
}

// mprotect: JIT the classic way: anonymous RW memory, write code, flip it to R|X, run it.
func mprotect([]string) error {
	m, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return err
	}
	m[0] = 0xc3 // ret
	if err := syscall.Mprotect(m, syscall.PROT_READ|syscall.PROT_EXEC); err != nil {
		return err
	}
	call(&m[0])
	fmt.Println("executed")
	return nil
}

// mmapExec: ask for executable memory directly, then write and run code in it.
func mmapExec([]string) error {
	m, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC,
		syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return err
	}
	m[0] = 0xc3
	call(&m[0])
	fmt.Println("executed")
	return nil
}

// mmapFile: the negative control: a read-only mapping of a file (what bbolt does) needs no capability.
func mmapFile(args []string) error {
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, 16, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	defer syscall.Munmap(m)
	fmt.Printf("mapped %q\n", m[:5])
	return nil
}
