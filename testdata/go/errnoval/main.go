// Command errnoval prints, as the Go runtime itself builds them, the two
// words of an `error` holding syscall.EPERM: the itab pointer and the data
// pointer. It is the live oracle for gohook.gosym.itabs
// (tests/gosym/test_itabs.py), which must find the same itab and a static
// word holding 1 in the binary alone.
//
// Output: one JSON object, addresses in decimal, as seen at run time (PIE
// builds: static address + load bias; `marker` is the run-time entry of
// main.marker, whose static entry the test takes from the pclntab).
//
//	constant: var err error = syscall.EPERM (the compiler points the data word
//	          at a read-only static copy of the constant)
//	dynamic:  an Errno value converted at run time (runtime.convT64, which
//	          points values below 256 into runtime.staticuint64s), as
//	          syscall's errnoErr does for errnos it has no variable for
//	asserted: an any holding the Errno, asserted to error (the runtime looks
//	          the itab up in its itab table, seeded from the binary's itabs)
package main

import (
	"fmt"
	"reflect"
	"syscall"
	"unsafe"
)

//go:noinline
func marker() {}

//go:noinline
func box(e syscall.Errno) error { return e }

//go:noinline
func boxAny(e syscall.Errno) any { return e }

// words returns the itab and data words of a non-empty interface value.
func words(err error) [2]uintptr {
	return *(*[2]uintptr)(unsafe.Pointer(&err))
}

func show(name string, err error) string {
	w := words(err)
	return fmt.Sprintf("%q: {\"itab\": %d, \"data\": %d, \"value\": %d, \"text\": %q}",
		name, w[0], w[1], *(*uintptr)(unsafe.Pointer(w[1])), err.Error())
}

func main() {
	var constant error = syscall.EPERM
	dynamic := box(syscall.EPERM)
	asserted, ok := boxAny(syscall.EPERM).(error)
	if !ok {
		panic("syscall.Errno does not implement error")
	}
	fmt.Printf("{\"marker\": %d, %s, %s, %s}\n", reflect.ValueOf(marker).Pointer(),
		show("constant", constant), show("dynamic", dynamic), show("asserted", asserted))
}
