"""The rawapp fixture (issue 17 §4): modules whose raw system calls the kernel charges by their numbers.

Built per toolchain against the golang.org/x/sys its GOROOT vendors (src/cmd/vendor, as
tests/static/test_xsys_numbers.py does), with four local modules beside the main one:

  - example.com/reader: syscall.Syscall6(SYS_OPENAT, ..., O_RDONLY|O_CLOEXEC): files.read by openat's rule (and
    os.ReadFile("/proc/self/status"): files.read through a hook, with a constant path);
  - example.com/writer: syscall.Syscall6(SYS_OPENAT, ..., O_CREAT|O_WRONLY|O_TRUNC|O_CLOEXEC): files.write;
  - example.com/quiet: socket(AF_INET, SOCK_STREAM), close, sched_yield: numbers the kernel charges nothing
    beyond `syscall` (no rule, or a rule none of whose tests holds for these constants);
  - example.com/dyn: an openat whose flags, and a call whose number, are not constants at the call (the number is
    24, sched_yield, at run time: a number with no rule, so the generated policy still runs it);

and main calling x/sys: unix.Socket(AF_NETLINK, SOCK_RAW, 0) (network.listen: a raw socket), unix.Open with
O_CREAT|O_WRONLY and with O_RDONLY (x/sys's openat passes its caller's flags on: not constant there), unix.Getpid
(getpid: system.read) and unix.Close (close: nothing). `rawapp DIR` does all of this in DIR and prints `done`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import gofixtures
from gofixtures import Toolchain

XSYS = "golang.org/x/sys"
MAIN_MODULE = "example.com/rawapp"
LOCAL = ("reader", "writer", "quiet", "dyn")

SOURCES = {
    "reader": """// Package reader opens a file read-only with a raw openat whose flags are a constant, and reads
// a file of a constant name with os.ReadFile.
package reader

import (
	"os"
	"syscall"
	"unsafe"
)

// Status reads /proc/self/status through os (the syscall.openat hook, with a constant path).
func Status() error {
	_, err := os.ReadFile("/proc/self/status")
	return err
}

// Read opens path read-only and closes it: files.read by openat's flags rule.
func Read(path string) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(0xffffffffffffff9c), uintptr(unsafe.Pointer(p)),
		syscall.O_RDONLY|syscall.O_CLOEXEC, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	syscall.Syscall(syscall.SYS_CLOSE, fd, 0, 0)
	return nil
}
""",
    "writer": """// Package writer creates a file with a raw openat whose flags are a constant.
package writer

import (
	"syscall"
	"unsafe"
)

// Create creates path for writing and closes it: files.write by openat's flags rule.
func Create(path string) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(0xffffffffffffff9c), uintptr(unsafe.Pointer(p)),
		syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o600, 0, 0)
	if errno != 0 {
		return errno
	}
	syscall.Syscall(syscall.SYS_CLOSE, fd, 0, 0)
	return nil
}
""",
    "quiet": """// Package quiet makes raw system calls that the kernel charges nothing beyond `syscall`.
package quiet

import "syscall"

// Run opens and closes a TCP socket and yields.
func Run() error {
	fd, _, errno := syscall.RawSyscall(syscall.SYS_SOCKET, syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if errno != 0 {
		return errno
	}
	syscall.Syscall(syscall.SYS_CLOSE, fd, 0, 0)
	syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
	return nil
}
""",
    "dyn": """// Package dyn makes raw system calls whose flags, and whose number, are not constants at the call.
package dyn

import (
	"syscall"
	"unsafe"
)

// Open opens path with the flags its caller gives.
//
//go:noinline
func Open(path string, flags int) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(0xffffffffffffff9c), uintptr(unsafe.Pointer(p)),
		uintptr(flags), 0o600, 0, 0)
	if errno != 0 {
		return errno
	}
	syscall.Syscall(syscall.SYS_CLOSE, fd, 0, 0)
	return nil
}

// Call makes system call nr with no arguments.
//
//go:noinline
func Call(nr uintptr) uintptr {
	r, _, _ := syscall.RawSyscall(nr, 0, 0, 0)
	return r
}
""",
}

MAIN = """package main

import (
	"fmt"
	"os"

	"example.com/dyn"
	"example.com/quiet"
	"example.com/reader"
	"example.com/writer"
	"golang.org/x/sys/unix"
)

func main() {
	dir := os.Args[1]
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 0)
	fmt.Println("socket", err)
	if err == nil {
		unix.Close(fd)
	}
	fd, err = unix.Open(dir+"/created", unix.O_CREAT|unix.O_WRONLY, 0o600)
	fmt.Println("create", err)
	if err == nil {
		unix.Close(fd)
	}
	fd, err = unix.Open(dir+"/created", unix.O_RDONLY, 0)
	fmt.Println("open", err)
	if err == nil {
		unix.Close(fd)
	}
	fmt.Println("getpid", unix.Getpid() > 0)
	fmt.Println("reader", reader.Status(), reader.Read(dir+"/created"))
	fmt.Println("writer", writer.Create(dir+"/written"))
	fmt.Println("quiet", quiet.Run())
	// flags 0 (O_RDONLY) and system call 24 (sched_yield) with one argument, neither a constant for the compiler
	fmt.Println("dyn", dyn.Open(dir+"/created", len(os.Args)-2), dyn.Call(uintptr(len(os.Args)+22)))
	fmt.Println("done")
}
"""

#: What the kernel charges each module's raw calls with (the static reach must be exactly this): openat's flags
#: rule (O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND is files.write, else files.read) where the flags are constants,
#: both where they are not; socket(AF_INET, SOCK_STREAM), close and sched_yield nothing beyond `syscall`.
EXPECTED = {
    MAIN_MODULE: frozenset(),
    "example.com/reader": frozenset({"syscall", "files.read"}),
    "example.com/writer": frozenset({"syscall", "files.write"}),
    "example.com/quiet": frozenset({"syscall"}),
    "example.com/dyn": frozenset({"syscall", "files.read", "files.write"}),
}
#: x/sys: at least what main's calls are charged (socket of a raw type, the opens, getpid) ...
XSYS_NEEDED = frozenset({"syscall", "network.listen", "files.read", "files.write", "system.read"})
#: ... and at most that and memory.exec (its mmap and mremap, linked for its mmapper, pass prot and flags on)
XSYS_ALLOWED = XSYS_NEEDED | {"memory.exec"}


def build_rawapp(toolchain: Toolchain, root: Path, flags: tuple[str, ...] = ()) -> Path:
    """Write the fixture's modules under root, build it with toolchain (go build flags) and return the binary."""
    xsys, go_version = gofixtures.vendored_xsys(toolchain)
    shutil.copytree(xsys, root / "xsys")
    (root / "xsys" / "go.mod").write_text(f"module {XSYS}\n\ngo {go_version}\n")
    for name, text in SOURCES.items():
        (root / name).mkdir()
        (root / name / f"{name}.go").write_text(text)
        (root / name / "go.mod").write_text(f"module example.com/{name}\n\ngo {go_version}\n")
    app = root / "app"
    app.mkdir()
    (app / "main.go").write_text(MAIN)
    requires = "".join(f"\t{m} v0.0.0\n" for m in (XSYS, *(f"example.com/{n}" for n in LOCAL)))
    replaces = "".join(f"\t{m} => ../{d}\n" for m, d in ((XSYS, "xsys"), *((f"example.com/{n}", n) for n in LOCAL)))
    (app / "go.mod").write_text(f"module {MAIN_MODULE}\n\ngo {go_version}\n\nrequire (\n{requires})\n\n"
                                f"replace (\n{replaces})\n")
    out = root / "rawapp"
    proc = subprocess.run([str(toolchain.go), "build", *flags, "-o", str(out), "."], cwd=app,
                          env=gofixtures.go_env(toolchain), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise gofixtures.FixtureError(f"building rawapp with {toolchain}: {proc.stderr}")
    return out
