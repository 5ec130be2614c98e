package main

import "syscall"

var syscallAddr = syscall.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}
