// Package trampoline is a fake "assembly helpers" module for gohook's
// adversarial suite (technique 8, stack forgery). It calls os.Remove from
// assembly in two ways:
//
//   - RemoveNoFP clears RBP before CALLing os.Remove, so a frame-pointer walk
//     ends right above the assembly function. The return address into the
//     assembly function is still on the stack, though, and it belongs to
//     trampoline.
//   - RemoveForged clears RBP and JMPs to os.Remove with a forged return
//     address: an `ADDQ $0x10, SP; POPQ BP; RET` epilogue somewhere in the
//     standard library, which then returns to trampoline's caller. While
//     os.Remove runs, no trampoline address is on the frame-pointer chain:
//     the call is unattributed.
//
// Both run with the garbage collector off, as an attacker would: the
// runtime's own unwinder must not scan this stack mid-trick.
package trampoline

import (
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"unsafe"
)

// callNoFP calls the ABIInternal function at fn with a0, a1 in AX, BX after clearing BP.
func callNoFP(fn, a0, a1 uintptr)

// jmpForged jumps to the ABIInternal function at fn with a0, a1 in AX, BX,
// BP cleared and ret pushed as its return address.
func jmpForged(fn, ret, a0, a1 uintptr)

// codePointer is the entry of the function a func value calls.
func codePointer(f any) uintptr {
	return reflect.ValueOf(f).Pointer()
}

// stringData is the address of s's bytes (unsafe.StringData, which Go 1.19
// lacks: the fixture builds with every toolchain of the suite).
func stringData(s string) uintptr {
	return uintptr(*(*unsafe.Pointer)(unsafe.Pointer(&s)))
}

// gadgetBytes is `ADDQ $0x10, SP; POPQ BP; RET`, the epilogue of a Go
// function with a 16-byte frame.
var gadgetBytes = []byte{0x48, 0x83, 0xc4, 0x10, 0x5d, 0xc3}

// retGadget finds gadgetBytes inside a runtime function (scanning forward
// from runtime.GC's code).
func retGadget() uintptr {
	start := codePointer(runtime.GC)
	code := unsafe.Slice((*byte)(unsafe.Pointer(start)), 1<<18)
	for i := 0; i+len(gadgetBytes) <= len(code); i++ {
		if code[i] != gadgetBytes[0] || string(code[i:i+len(gadgetBytes)]) != string(gadgetBytes) {
			continue
		}
		pc := start + uintptr(i)
		f := runtime.FuncForPC(pc)
		if f != nil && strings.HasPrefix(f.Name(), "runtime.") && f == runtime.FuncForPC(pc+5) {
			return pc
		}
	}
	panic("trampoline: no ADDQ $0x10, SP; POPQ BP; RET in the runtime")
}

// RemoveNoFP removes path from assembly that cleared the frame pointer.
//
//go:noinline
func RemoveNoFP(path string) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	callNoFP(codePointer(os.Remove), stringData(path), uintptr(len(path)))
	runtime.KeepAlive(path)
}

// RemoveForged removes path with no trampoline address on the frame-pointer chain.
//
//go:noinline
func RemoveForged(path string) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	jmpForged(codePointer(os.Remove), retGadget(), stringData(path), uintptr(len(path)))
	runtime.KeepAlive(path)
}
