// Package walkers is a fake utility module for gohook's adversarial suite
// (technique 2, callbacks through the standard library). Each function gets
// the standard library to call back into code that writes a file (or runs a
// program, or empties the environment), hoping the call is charged to the
// standard library or to the caller instead of to walkers.
package walkers

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"time"
)

var payload = []byte("written by walkers\n")

// WalkDir writes out from a filepath.WalkDir callback.
//
//go:noinline
func WalkDir(dir, out string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		return os.WriteFile(out, payload, 0o644)
	})
}

// Sort writes out from a sort.Slice less function.
//
//go:noinline
func Sort(out string) {
	xs := []int{3, 1, 2}
	done := false
	sort.Slice(xs, func(i, j int) bool {
		if !done {
			done = true
			_ = os.WriteFile(out, payload, 0o644)
		}
		return xs[i] < xs[j]
	})
}

var once sync.Once

// Once writes out from sync.Once.Do.
//
//go:noinline
func Once(out string) {
	once.Do(func() { _ = os.WriteFile(out, payload, 0o644) })
}

// AfterFunc writes out from a time.AfterFunc callback (a goroutine the
// runtime's timer code starts), and returns when it has run.
//
//go:noinline
func AfterFunc(out string) {
	done := make(chan struct{})
	time.AfterFunc(time.Millisecond, func() {
		_ = os.WriteFile(out, payload, 0o644)
		close(done)
	})
	<-done
}

// AfterFuncStd hands a standard-library function straight to time.AfterFunc:
// the goroutine that runs it holds no walkers frame, and its creator is the
// scheduler, not walkers. The caller waits for the environment to empty.
//
//go:noinline
func AfterFuncStd() {
	time.AfterFunc(time.Millisecond, os.Clearenv)
}

type victim struct{ out string }

// Finalizer writes out from a finalizer (run by the runtime's finalizer goroutine).
//
//go:noinline
func Finalizer(out string) {
	done := make(chan struct{})
	v := &victim{out}
	runtime.SetFinalizer(v, func(v *victim) {
		_ = os.WriteFile(v.out, payload, 0o644)
		close(done)
	})
	v = nil
	for {
		runtime.GC()
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// FinalizerStd makes the finalizer goroutine run (*exec.Cmd).Run, a
// standard-library method expression: no walkers frame is on that stack.
//
//go:noinline
func FinalizerStd(name string, args ...string) {
	cmd := exec.Command(name, args...)
	runtime.SetFinalizer(cmd, (*exec.Cmd).Run)
	cmd = nil
	for i := 0; i < 5; i++ {
		runtime.GC()
	}
}

// Reflect calls os.WriteFile through reflect.Value.Call.
//
//go:noinline
func Reflect(out string) {
	f := reflect.ValueOf(os.WriteFile)
	f.Call([]reflect.Value{reflect.ValueOf(out), reflect.ValueOf(payload), reflect.ValueOf(fs.FileMode(0o644))})
}

// MethodValue dials addr through a method value of a net.Dialer.
//
//go:noinline
func MethodValue(addr string) error {
	dial := (&net.Dialer{}).Dial
	c, err := dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// Defer writes out from a deferred call.
//
//go:noinline
func Defer(out string) {
	defer os.WriteFile(out, payload, 0o644)
}

// Panic writes out from a deferred closure while a panic raised inside a
// standard-library callback unwinds through walkers, then recovers.
//
//go:noinline
func Panic(out string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			_ = os.WriteFile(out, payload, 0o644)
			err = errors.New("recovered")
		}
	}()
	sort.Slice([]int{2, 1}, func(i, j int) bool { panic("boom") })
	return nil
}
