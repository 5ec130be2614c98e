// Package netclient is a fake third-party module for gohook fixtures: it
// dials TCP addresses and listens on the loopback interface.
package netclient

import (
	"net"
	"time"
)

// Dial connects to addr over TCP, writes a short greeting and closes.
//
//go:noinline
func Dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte("hello from netclient\n"))
	return err
}

// ListenLoopback listens on 127.0.0.1 (a free port), connects to itself,
// accepts that one connection and closes everything. It returns the address.
//
//go:noinline
func ListenLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	addr := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- Dial(addr) }()
	conn, err := ln.Accept()
	if err != nil {
		return "", err
	}
	conn.Close()
	return addr, <-done
}
