//go:build cgo

// Package nativefs is a fake "native bindings" module for gohook's
// adversarial suite (technique 6, cgo): its C code calls open() and
// connect() itself, out of reach of every hooked Go function. gohook sees the
// cgo entry (runtime.cgocall, capability `cgo`) and, through its system-call
// sentinel, the open and connect made inside.
package nativefs

/*
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int nf_create(const char *path) {
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	write(fd, "written by nativefs\n", 20);
	close(fd);
	return 0;
}

static int nf_connect(int port) {
	struct sockaddr_in sa;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int r = connect(s, (struct sockaddr *)&sa, sizeof sa);
	close(s);
	return r;
}

static int nf_add(int a, int b) { return a + b; }
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Available reports whether the C half is linked in (cgo builds only).
const Available = true

// Create creates path from C.
//
//go:noinline
func Create(path string) error {
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	if C.nf_create(p) != 0 {
		return errors.New("nf_create failed")
	}
	return nil
}

// Connect connects to 127.0.0.1:port from C.
//
//go:noinline
func Connect(port int) error {
	if C.nf_connect(C.int(port)) != 0 {
		return errors.New("nf_connect failed")
	}
	return nil
}

// Add adds in C (a cgo call with no system call).
//
//go:noinline
func Add(a, b int) int {
	return int(C.nf_add(C.int(a), C.int(b)))
}
