// Package envfile is a fake malicious dependency for gohook's adversarial suite: the environment and the process's memory through /proc files (issue 12 §2).
//
// A module granted files.read (and nothing of env.read or tamper) reads the
// environment as a file, under every name the kernel accepts for it, and writes
// its own code through /proc/self/mem. gohook decides from the file the kernel
// opened (gohook/bpf/c/lib/fileopen.h), so every spelling must be caught.
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package envfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"syscall"
)

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{
	"procenv-read": func(a []string) error {
		return readEnv(a, func() ([]byte, error) { return os.ReadFile("/proc/self/environ") })
	},
	"procenv-relative": func(a []string) error {
		return readEnv(a, func() ([]byte, error) {
			if err := os.Chdir("/proc/self"); err != nil {
				return nil, err
			}
			return os.ReadFile("environ")
		})
	},
	"procenv-thread": func(a []string) error {
		return readEnv(a, func() ([]byte, error) { return os.ReadFile("/proc/thread-self/environ") })
	},
	"procenv-task": func(a []string) error {
		return readEnv(a, func() ([]byte, error) {
			return os.ReadFile("/proc/self/task/" + strconv.Itoa(syscall.Gettid()) + "/environ")
		})
	},
	"procenv-pid": func(a []string) error {
		return readEnv(a, func() ([]byte, error) {
			return os.ReadFile("/proc/" + strconv.Itoa(os.Getpid()) + "/environ")
		})
	},
	"procenv-dirfd": func(a []string) error {
		return readEnv(a, func() ([]byte, error) {
			dir, err := syscall.Open("/proc/self", syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
			if err != nil {
				return nil, err
			}
			defer syscall.Close(dir)
			fd, err := syscall.Openat(dir, "environ", syscall.O_RDONLY, 0)
			if err != nil {
				return nil, err
			}
			f := os.NewFile(uintptr(fd), "environ")
			defer f.Close()
			var buf bytes.Buffer
			_, err = buf.ReadFrom(f)
			return buf.Bytes(), err
		})
	},
	// procenv-symlink DIR NAME: a link of its own to the file (needs files.write besides).
	"procenv-symlink": func(a []string) error {
		if len(a) < 2 {
			return fmt.Errorf("needs DIR NAME")
		}
		link := filepath.Join(a[0], "x")
		if err := os.Symlink("/proc/self/environ", link); err != nil {
			return err
		}
		return readEnv(a[1:], func() ([]byte, error) { return os.ReadFile(link) })
	},
	"procmem-write": procmemWrite,
	// procsys-write: process state through a /proc file written (here its own thread name: harmless).
	"procsys-write": func(a []string) error {
		if err := os.WriteFile("/proc/self/comm", []byte("envfile"), 0); err != nil {
			return err
		}
		fmt.Println("envfile: renamed itself through /proc/self/comm")
		return nil
	},
}

// readEnv prints the value of variable a[0] found in the environment block that read returns.
func readEnv(a []string, read func() ([]byte, error)) error {
	if len(a) < 1 {
		return fmt.Errorf("needs NAME")
	}
	data, err := read()
	if err != nil {
		return err
	}
	prefix := []byte(a[0] + "=")
	for _, kv := range bytes.Split(data, []byte{0}) {
		if bytes.HasPrefix(kv, prefix) {
			fmt.Printf("envfile: %s\n", kv[len(prefix):])
			return nil
		}
	}
	fmt.Printf("envfile: %s not found in %d bytes\n", a[0], len(data))
	return nil
}

// procmemWrite opens /proc/self/mem for writing and writes one byte of its own code back over itself
// (the same value: harmless), which is how a module would restore a probed instruction.
func procmemWrite(a []string) error {
	pc := reflect.ValueOf(readEnv).Pointer() + 8 // inside the function, past any probe on its entry
	f, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, int64(pc)); err != nil {
		return err
	}
	n, err := f.WriteAt(b, int64(pc))
	if err != nil {
		return err
	}
	fmt.Printf("envfile: wrote %d byte at %#x of its own code\n", n, pc)
	return nil
}
